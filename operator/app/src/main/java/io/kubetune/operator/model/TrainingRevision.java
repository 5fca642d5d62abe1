package io.kubetune.operator.model;

import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import java.util.Objects;

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
    training.resources = null;
    return Hashes.sha256Hex(Json.canonical(training), 6);
  }

  /**
   * Fingerprint of the training pod's resources and placement. When it changes during a run, the
   * Job is replaced within the same run: the new pod gets the new resources and the trainer picks
   * up where the run's checkpoints left it.
   */
  public static String runtimeOf(FineTuneJob job) {
    return Hashes.sha256Hex(
        Json.canonical(Objects.requireNonNullElse(job.getSpec().resources, "")), 6);
  }
}
