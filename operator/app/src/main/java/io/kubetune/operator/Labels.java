package io.kubetune.operator;

import io.kubetune.api.v1alpha1.FineTuneJob;
import java.util.LinkedHashMap;
import java.util.Map;

/** The standard label set on everything the operator creates. */
public final class Labels {
  public static final String NAME = "app.kubernetes.io/name";
  public static final String INSTANCE = "app.kubernetes.io/instance";
  public static final String COMPONENT = "app.kubernetes.io/component";
  public static final String MANAGED_BY = "app.kubernetes.io/managed-by";
  public static final String JOB = "kubetune.io/job";

  /** Kueue admits workloads by this label; copied from the FineTuneJob to its Job. */
  public static final String KUEUE_QUEUE_NAME = "kueue.x-k8s.io/queue-name";

  public static final String MANAGED_BY_VALUE = "kubetune-operator";
  public static final String TRAINER_NAME_VALUE = "kubetune-trainer";
  public static final String TRAINING_COMPONENT = "training";

  /** Selects every object this operator manages, for the informers. */
  public static final String MANAGED_SELECTOR = MANAGED_BY + "=" + MANAGED_BY_VALUE;

  /** Annotation on the Job: the training revision it runs. */
  public static final String TRAINING_REVISION_ANNOTATION = "kubetune.io/training-revision";

  /** Annotation on the Job: the resources/placement fingerprint of its pod template. */
  public static final String RUNTIME_ANNOTATION = "kubetune.io/runtime";

  private Labels() {}

  public static Map<String, String> training(FineTuneJob job) {
    Map<String, String> labels = new LinkedHashMap<>();
    labels.put(NAME, TRAINER_NAME_VALUE);
    labels.put(INSTANCE, job.getMetadata().getName());
    labels.put(COMPONENT, TRAINING_COMPONENT);
    labels.put(MANAGED_BY, MANAGED_BY_VALUE);
    labels.put(JOB, job.getMetadata().getName());
    return labels;
  }

  public static final String SERVER_NAME_VALUE = "kubetune-server";
  public static final String SERVING_COMPONENT = "serving";

  /** Annotations on serving objects and pods. */
  public static final String SERVING_HASH_ANNOTATION = "kubetune.io/serving-hash";

  public static final String ADAPTER_DIGEST_ANNOTATION = "kubetune.io/adapter-digest";
  public static final String ADAPTER_URI_ANNOTATION = "kubetune.io/adapter-uri";

  public static Map<String, String> serving(FineTuneJob job) {
    Map<String, String> labels = new LinkedHashMap<>();
    labels.put(NAME, SERVER_NAME_VALUE);
    labels.put(INSTANCE, job.getMetadata().getName());
    labels.put(COMPONENT, SERVING_COMPONENT);
    labels.put(MANAGED_BY, MANAGED_BY_VALUE);
    labels.put(JOB, job.getMetadata().getName());
    return labels;
  }

  /** The immutable selector of the serving Deployment and the Service. */
  public static Map<String, String> servingSelector(FineTuneJob job) {
    Map<String, String> labels = new LinkedHashMap<>();
    labels.put(JOB, job.getMetadata().getName());
    labels.put(COMPONENT, SERVING_COMPONENT);
    return labels;
  }

  /** Labels of the Job object itself: the standard set plus Kueue's queue name if present. */
  public static Map<String, String> trainingJob(FineTuneJob job) {
    Map<String, String> labels = training(job);
    Map<String, String> own = job.getMetadata().getLabels();
    if (own != null && own.containsKey(KUEUE_QUEUE_NAME)) {
      labels.put(KUEUE_QUEUE_NAME, own.get(KUEUE_QUEUE_NAME));
    }
    return labels;
  }
}
