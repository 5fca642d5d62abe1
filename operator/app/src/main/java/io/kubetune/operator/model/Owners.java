package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.kubetune.api.v1alpha1.FineTuneJob;

/** Owner references, so that deleting a FineTuneJob garbage-collects its children. */
public final class Owners {
  private Owners() {}

  public static OwnerReference controllerReference(FineTuneJob job) {
    return new OwnerReferenceBuilder()
        .withApiVersion(FineTuneJob.API_VERSION)
        .withKind(FineTuneJob.KIND)
        .withName(job.getMetadata().getName())
        .withUid(job.getMetadata().getUid())
        .withController(true)
        .withBlockOwnerDeletion(true)
        .build();
  }
}
