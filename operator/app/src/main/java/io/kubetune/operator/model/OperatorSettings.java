package io.kubetune.operator.model;

/**
 * Installation-wide settings of the operator (from application.properties / environment).
 *
 * @param trainerImage image for training pods unless a FineTuneJob overrides it
 * @param imagePullPolicy pull policy for the trainer image
 * @param defaultCpu CPU request when the FineTuneJob sets none
 * @param defaultMemory memory request and limit when the FineTuneJob sets none
 */
public record OperatorSettings(
    String trainerImage, String imagePullPolicy, String defaultCpu, String defaultMemory) {

  public static OperatorSettings defaults() {
    return new OperatorSettings(
        "ghcr.io/kubetune/kubetune-trainer:0.1.0", "IfNotPresent", "1", "4Gi");
  }
}
