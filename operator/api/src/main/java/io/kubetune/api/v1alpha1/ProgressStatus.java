package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ProgressStatus {
  @JsonPropertyDescription("Optimizer steps completed.")
  public Long step;

  @JsonPropertyDescription("Optimizer steps planned for the run.")
  public Long totalSteps;

  @JsonPropertyDescription("Current epoch (fractional).")
  public Double epoch;

  @JsonPropertyDescription("Latest training loss.")
  public Double loss;

  @JsonPropertyDescription("Latest validation loss.")
  public Double evalLoss;

  @JsonPropertyDescription("Training throughput.")
  public Double tokensPerSecond;

  @JsonPropertyDescription("Estimated remaining seconds.")
  public Long etaSeconds;

  @JsonPropertyDescription("Estimated remaining time, human-readable (e.g. 12m30s).")
  public String eta;

  @JsonPropertyDescription("step/totalSteps (percent), for kubectl get.")
  public String summary;

  @JsonPropertyDescription("When the trainer last reported (RFC 3339).")
  public String updatedAt;
}
