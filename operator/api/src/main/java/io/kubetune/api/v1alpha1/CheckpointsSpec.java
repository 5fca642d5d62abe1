package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.Bounds;
import io.kubetune.api.StorageUri;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointsSpec {
  // Defaults and bounds live in Bounds; these names remain for callers.
  public static final int DEFAULT_EVERY_STEPS = Bounds.CHECKPOINT_EVERY_STEPS_DEFAULT;
  public static final int DEFAULT_KEEP_LAST = Bounds.KEEP_LAST_DEFAULT;

  @Required
  @Size(max = 1024)
  @Pattern(StorageUri.PATTERN)
  @JsonPropertyDescription(
      "Prefix where checkpoints (step-<N>/) and each training run's export"
          + " (final/<status.trainingRevision>/, named by status.adapter.uri) are written:"
          + " s3://bucket/prefix/ or pvc://claim/path/. Must not be shared by two FineTuneJobs.")
  public String uri;

  @Min(Bounds.CHECKPOINT_EVERY_STEPS_MIN)
  @JsonPropertyDescription(
      "Write a checkpoint every N optimizer steps. Default "
          + Bounds.CHECKPOINT_EVERY_STEPS_DEFAULT
          + ".")
  public Integer everySteps;

  @Min(Bounds.KEEP_LAST_MIN)
  @Max(Bounds.KEEP_LAST_MAX)
  @JsonPropertyDescription(
      "Checkpoints kept besides the best one by the evaluation metric. Default "
          + Bounds.KEEP_LAST_DEFAULT
          + ".")
  public Integer keepLast;

  @JsonPropertyDescription(
      "true: export (final/<revision>/) the weights of the evaluation that was best on the gate's metric"
          + " (serving.gate.metric, else hyperparameters.earlyStopping.metric, else eval_loss),"
          + " not those of the last step; needs held-out data. Default false.")
  public Boolean exportBest;
}
