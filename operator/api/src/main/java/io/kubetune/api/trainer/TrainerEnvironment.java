package io.kubetune.api.trainer;

/**
 * Environment variables that one module sets and the trainer reads: the operator on trainer and
 * serving pods, local mode on the trainer process. Variables only the trainer reads (its own tuning
 * knobs) stay next to their options.
 */
public final class TrainerEnvironment {
  private TrainerEnvironment() {}

  /** Where s3:// inputs are staged (the pod's cache volume); the trainer falls back to tmp. */
  public static final String STAGING_DIR = "KUBETUNE_STAGING_DIR";

  /**
   * Where the trainer writes its {@link TrainerTermination} JSON (default /dev/termination-log).
   */
  public static final String TERMINATION_LOG = "KUBETUNE_TERMINATION_LOG";

  /** "true" for path-style S3 addressing on serving pods. */
  public static final String S3_PATH_STYLE = "KUBETUNE_S3_PATH_STYLE";
}
