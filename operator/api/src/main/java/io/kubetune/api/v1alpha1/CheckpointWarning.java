package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * A checkpoint the trainer could not use or could not write, as it reported it in its log: a newer
 * checkpoint rejected at resume ({@code CheckpointSkipped}) or a checkpoint whose commit failed
 * while training went on ({@code CheckpointFailed}).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointWarning {
  public static final String SKIPPED = "CheckpointSkipped";
  public static final String FAILED = "CheckpointFailed";

  @JsonPropertyDescription(
      "CheckpointSkipped: the checkpoint was rejected when the trainer resumed (corrupt or"
          + " incomplete); the run resumed from an older one or started over. CheckpointFailed:"
          + " the checkpoint could not be written; training went on and the previous one stayed"
          + " in force.")
  public String reason;

  @JsonPropertyDescription("Optimizer step of the checkpoint concerned.")
  public Long step;

  @JsonPropertyDescription(
      "Folder URI of the skipped checkpoint, in the form of spec.checkpoints.uri (absent for"
          + " CheckpointFailed).")
  public String uri;

  @JsonPropertyDescription(
      "What happened, as the trainer explained it (e.g. the checksum mismatch), and the step the"
          + " run resumed from or the last committed checkpoint that stays in force.")
  public String message;

  @JsonPropertyDescription("When the operator first saw the trainer report it (RFC 3339).")
  public String time;
}
