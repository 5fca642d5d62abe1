package io.kubetune.api;

/**
 * Where things are, as both the operator and the trainer know them: inside the trainer pod and
 * below a job's {@code checkpoints.uri}.
 */
public final class TrainerLayout {
  private TrainerLayout() {}

  /** pvc:// claims are mounted at {@code <root>/<claim>} in trainer and serving pods. */
  public static final String PVC_MOUNT_ROOT = "/var/run/kubetune/pvc";

  /** The final export (adapter or full weights, metrics.json) below {@code checkpoints.uri}. */
  public static final String FINAL_FOLDER = "final/";

  /**
   * The owner marker below {@code checkpoints.uri}: {@code {namespace, name, uid}} of the
   * FineTuneJob that claimed the location (written with a conditional put by the trainer).
   */
  public static final String OWNER_MARKER = "owner.json";
}
