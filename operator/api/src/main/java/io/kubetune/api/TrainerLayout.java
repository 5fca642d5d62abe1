package io.kubetune.api;

/**
 * Where things are, as both the operator and the trainer know them: inside the trainer pod and
 * below a job's {@code checkpoints.uri}.
 */
public final class TrainerLayout {
  private TrainerLayout() {}

  /** pvc:// claims are mounted at {@code <root>/<claim>} in trainer and serving pods. */
  public static final String PVC_MOUNT_ROOT = "/var/run/kubetune/pvc";

  /**
   * The folder below {@code checkpoints.uri} that holds the exports (adapter or full weights,
   * metrics.json), one subfolder per training run: see {@link #exportFolder(String)}.
   */
  public static final String FINAL_FOLDER = "final/";

  /**
   * A training run's export below {@code checkpoints.uri}: {@code final/<trainingRevision>/}.
   *
   * <p>Per run, so that a retrain (a new {@code restartNonce}, hence a new revision) never writes
   * into the folder the adapter being served was loaded from: a canary serves both side by side,
   * and a serving pod that restarts still finds the served adapter's files. Keyed by the revision
   * and nothing else, so a resumed run (same revision, after a crash, a preemption or a change of
   * {@code resources}) exports into the same folder. The revision is the operator's fingerprint of
   * the training fields ({@code status.trainingRevision}); {@code status.adapter.uri} names the
   * latest run's folder.
   *
   * @throws IllegalArgumentException when the revision is blank or not one path segment
   */
  public static String exportFolder(String trainingRevision) {
    if (trainingRevision == null
        || !trainingRevision.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
        || trainingRevision.contains("..")) {
      throw new IllegalArgumentException(
          "training revision '"
              + trainingRevision
              + "' cannot name an export folder: expected letters, digits, '.', '_', '-'");
    }
    return FINAL_FOLDER + trainingRevision + "/";
  }

  /**
   * The owner marker below {@code checkpoints.uri}: {@code {namespace, name, uid}} of the
   * FineTuneJob that claimed the location (written with a conditional put by the trainer).
   */
  public static final String OWNER_MARKER = "owner.json";
}
