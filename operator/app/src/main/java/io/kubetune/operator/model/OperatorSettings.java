package io.kubetune.operator.model;

/**
 * Installation-wide settings of the operator (from application.properties / environment).
 *
 * @param trainerImage image for training pods unless a FineTuneJob overrides it
 * @param imagePullPolicy pull policy for the trainer image
 * @param defaultCpu CPU request when the FineTuneJob sets none
 * @param defaultMemory memory request and limit when the FineTuneJob sets none
 * @param progressPollInterval how often the trainer's log is read for progress while it runs
 */
public record OperatorSettings(
    String trainerImage,
    String imagePullPolicy,
    String defaultCpu,
    String defaultMemory,
    java.time.Duration progressPollInterval) {

  public static final String DEFAULT_TRAINER_IMAGE = "ghcr.io/kubetune/kubetune-trainer:0.1.0";

  public static OperatorSettings defaults() {
    return new OperatorSettings(
        DEFAULT_TRAINER_IMAGE, "IfNotPresent", "1", "4Gi", java.time.Duration.ofSeconds(15));
  }

  public OperatorSettings withProgressPollInterval(java.time.Duration interval) {
    return new OperatorSettings(trainerImage, imagePullPolicy, defaultCpu, defaultMemory, interval);
  }
}
