package io.kubetune.operator.model;

import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;

/**
 * Fingerprint of everything that shapes a training run: the spec without {@code suspend} and {@code
 * serving} (which never restart training), plus {@code restartNonce}. A different fingerprint means
 * a new run and a new Job.
 */
public final class TrainingRevision {
  private TrainingRevision() {}

  public static String of(FineTuneJob job) {
    FineTuneJobSpec training = Json.copy(job.getSpec(), FineTuneJobSpec.class);
    training.suspend = null;
    training.serving = null;
    return Hashes.sha256Hex(Json.canonical(training), 6);
  }
}
