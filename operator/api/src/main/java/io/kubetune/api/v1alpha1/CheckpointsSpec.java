package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointsSpec {
  public static final int DEFAULT_EVERY_STEPS = 100;
  public static final int DEFAULT_KEEP_LAST = 3;

  @Required
  @Size(max = 1024)
  @Pattern(StorageUris.PATTERN)
  @JsonPropertyDescription(
      "Prefix where checkpoints (step-<N>/) and the final export (final/) are written:"
          + " s3://bucket/prefix/ or pvc://claim/path/. Must not be shared by two FineTuneJobs.")
  public String uri;

  @Min(1)
  @JsonPropertyDescription("Write a checkpoint every N optimizer steps. Default 100.")
  public Integer everySteps;

  @Min(1)
  @Max(100)
  @JsonPropertyDescription(
      "Checkpoints kept besides the best one by the evaluation metric. Default 3.")
  public Integer keepLast;
}
