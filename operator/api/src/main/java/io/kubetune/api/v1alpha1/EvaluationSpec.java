package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** How the held-out split is evaluated, beyond loss and perplexity. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class EvaluationSpec {
  @JsonPropertyDescription(
      "completion and chat datasets: greedy generation on held-out prompts, scored with"
          + " exact_match, bleu and rouge_l for the base and the tuned model.")
  public GenerationEvalSpec generation;
}
