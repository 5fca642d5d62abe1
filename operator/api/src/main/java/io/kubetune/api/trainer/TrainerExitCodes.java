package io.kubetune.api.trainer;

/**
 * Process exit codes of the trainer. The operator maps them onto the Job's podFailurePolicy and
 * onto condition reasons; docs/trainer-config.md lists them for users.
 */
public final class TrainerExitCodes {
  /** Training finished and the result was exported. */
  public static final int SUCCESS = 0;

  /** An unexpected error (bug, out of memory, storage unavailable too long): retried. */
  public static final int UNEXPECTED_ERROR = 1;

  /** The input is wrong (config, model files, dataset lines): retrying cannot help. */
  public static final int BAD_INPUT = 2;

  /** The loss became NaN or infinite: retrying the same settings cannot help. */
  public static final int LOSS_NOT_FINITE = 3;

  /** SIGTERM received; a checkpoint was committed before exiting: resume, do not count it. */
  public static final int PREEMPTED = 4;

  /**
   * A volume the trainer writes to (the checkpoint volume, the output, the scratch space) has no
   * space left: retrying cannot help until someone frees space or gives the job a larger volume.
   */
  public static final int STORAGE_FULL = 5;

  private TrainerExitCodes() {}
}
