package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.Map;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointRecord {
  @JsonPropertyDescription("Optimizer step the checkpoint was taken at.")
  public Long step;

  @JsonPropertyDescription("Checkpoint folder URI.")
  public String uri;

  @JsonPropertyDescription("When the checkpoint was committed (RFC 3339).")
  public String time;

  @JsonPropertyDescription("Evaluation metrics at that step, if evaluated.")
  public Map<String, Double> metrics;
}
