package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.Bounds;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class EarlyStoppingSpec {
  @Required
  @Min(Bounds.PATIENCE_MIN)
  @Max(Bounds.PATIENCE_MAX)
  @JsonPropertyDescription("Evaluations without improvement before training stops.")
  public Integer patience;

  @Size(max = 16)
  @JsonPropertyDescription(
      "Metric to watch. eval_loss (default) and perplexity are minimised; accuracy, f1,"
          + " precision and recall (classification only) and exact_match, bleu and rouge_l"
          + " (completion and chat only) are maximised.")
  public EvalMetric metric;
}
