package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.Map;

/** One committed checkpoint, as the trainer reported it in its log. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointRecord {
  @JsonPropertyDescription("Optimizer step the checkpoint was taken at.")
  public Long step;

  @JsonPropertyDescription("Checkpoint folder URI, in the form of spec.checkpoints.uri.")
  public String uri;

  @JsonPropertyDescription(
      "When the checkpoint was committed (RFC 3339), as the trainer reported it; for a trainer"
          + " that does not report it, when the operator first saw it.")
  public String time;

  @JsonPropertyDescription(
      "Evaluation metrics recorded with the checkpoint: the latest evaluation at or before its"
          + " step. Absent before the first evaluation.")
  public Map<String, Double> metrics;

  @JsonPropertyDescription(
      "Set when the trainer rejected this checkpoint as it resumed (e.g. a checksum mismatch) and"
          + " used an older one: why. A rejected checkpoint is never latestCheckpoint or"
          + " bestCheckpoint.")
  public String rejected;
}
