package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.threshold) != (has(self.mustBeatBase) && self.mustBeatBase)",
    message = "serving.gate needs exactly one of threshold or mustBeatBase: true")
public class GateSpec {
  @Required
  @Size(max = 16)
  @JsonPropertyDescription(
      "Metric evaluated on the held-out split for both base and tuned model: eval_loss and"
          + " perplexity (lower is better); accuracy, f1, precision, recall (classification);"
          + " exact_match, bleu, rouge_l (completion and chat, from greedy generation; higher is"
          + " better).")
  public EvalMetric metric;

  @JsonPropertyDescription(
      "Absolute threshold the tuned model must reach (<= for loss/perplexity, >= otherwise).")
  public Double threshold;

  @JsonPropertyDescription("The tuned model must beat the base model on the metric.")
  public Boolean mustBeatBase;

  @Min(0.0)
  @JsonPropertyDescription("With mustBeatBase: the minimum improvement over the base. Default 0.")
  public Double minMargin;
}
