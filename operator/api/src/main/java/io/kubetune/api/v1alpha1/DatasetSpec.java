package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import io.kubetune.api.Bounds;
import io.kubetune.api.StorageUri;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "!(has(self.validation) && has(self.validationSplit))",
    message =
        "set either dataset.validation (a file) or dataset.validationSplit (a fraction), not both")
// The schema's minimum alone does not hold: the API server compares a whole-number value such as 0
// with a fractional bound truncated to an integer (0.01 -> 0), so validationSplit: 0 would pass.
@ValidationRule(
    value = "!has(self.validationSplit) || self.validationSplit >= " + Bounds.VALIDATION_SPLIT_MIN,
    message =
        "dataset.validationSplit must be at least "
            + Bounds.VALIDATION_SPLIT_MIN
            + " (a fraction of the training file); remove it to train without a validation split")
@ValidationRule(
    value = "!has(self.labels) || self.format == 'classification'",
    message = "dataset.labels is only used with dataset.format: classification")
public class DatasetSpec {

  public enum Format {
    completion,
    chat,
    classification
  }

  @Required
  @Size(max = 1024)
  @Pattern(StorageUri.PATTERN)
  @JsonPropertyDescription("Training data: a JSONL file (s3://... or pvc://...).")
  public String train;

  @Size(max = 1024)
  @Pattern(StorageUri.PATTERN)
  @JsonPropertyDescription("Held-out validation JSONL file. Exclusive with validationSplit.")
  public String validation;

  @Min(Bounds.VALIDATION_SPLIT_MIN)
  @Max(Bounds.VALIDATION_SPLIT_MAX)
  @JsonPropertyDescription(
      "Fraction of the training file held out for validation with a seeded split (0.01-0.5)."
          + " Exclusive with validation.")
  public Double validationSplit;

  @Required
  @Size(max = 16)
  @JsonPropertyDescription(
      "Record format: completion {prompt, completion}; chat {messages: [{role, content}]};"
          + " classification {text, label}. Loss is computed on completion/assistant tokens only.")
  public Format format;

  @Size(max = 1000)
  @JsonPropertyDescription(
      "classification only: the label set, in the order of the classifier's outputs. Default:"
          + " the labels found in the training file, sorted.")
  public List<@Size(max = 256) String> labels;

  @JsonPropertyDescription("Field names in the JSONL records, if they differ from the defaults.")
  public DatasetFields fields;
}
