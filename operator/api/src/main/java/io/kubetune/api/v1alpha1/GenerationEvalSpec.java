package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.kubetune.api.Bounds;

/**
 * Generation metrics on the held-out split (completion and chat datasets): at every evaluation the
 * model answers the first {@code maxExamples} held-out prompts greedily (stopping at EOS, the end
 * of the assistant turn or {@code maxNewTokens}), and the answers are scored against the held-out
 * completions: exact_match (share of answers equal to the reference, surrounding whitespace
 * ignored), bleu (corpus BLEU as sacreBLEU computes it: 13a tokenisation, 4-grams, brevity penalty,
 * 0-100) and rouge_l (mean ROUGE-L F1 as rouge-score computes it without stemming, 0-1).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class GenerationEvalSpec {
  @Min(Bounds.GENERATION_MAX_EXAMPLES_MIN)
  @Max(Bounds.GENERATION_MAX_EXAMPLES_MAX)
  @JsonPropertyDescription(
      "Held-out prompts answered at each evaluation (the first ones of the split); 0 turns"
          + " generation metrics off. Default "
          + Bounds.GENERATION_MAX_EXAMPLES_DEFAULT
          + ".")
  public Integer maxExamples;

  @Min(Bounds.GENERATION_MAX_NEW_TOKENS_MIN)
  @Max(Bounds.GENERATION_MAX_NEW_TOKENS_MAX)
  @JsonPropertyDescription(
      "Most tokens generated per answer (fewer when the model's context ends first). Default "
          + Bounds.GENERATION_MAX_NEW_TOKENS_DEFAULT
          + ".")
  public Integer maxNewTokens;
}
