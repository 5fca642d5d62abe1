package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Locale;

/**
 * Evaluation metrics the trainer reports, with the direction that counts as better and the dataset
 * formats that have them.
 */
public enum EvalMetric {
  @JsonProperty("eval_loss")
  EVAL_LOSS("eval_loss", false, Family.ANY),
  @JsonProperty("perplexity")
  PERPLEXITY("perplexity", false, Family.ANY),
  @JsonProperty("accuracy")
  ACCURACY("accuracy", true, Family.CLASSIFICATION),
  @JsonProperty("f1")
  F1("f1", true, Family.CLASSIFICATION),
  @JsonProperty("precision")
  PRECISION("precision", true, Family.CLASSIFICATION),
  @JsonProperty("recall")
  RECALL("recall", true, Family.CLASSIFICATION),
  /** Share of held-out prompts whose greedy answer equals the reference (whitespace-trimmed). */
  @JsonProperty("exact_match")
  EXACT_MATCH("exact_match", true, Family.GENERATION),
  /** Corpus BLEU of the greedy answers, as sacreBLEU computes it (13a, 0-100). */
  @JsonProperty("bleu")
  BLEU("bleu", true, Family.GENERATION),
  /** Mean ROUGE-L F1 of the greedy answers, as rouge-score computes it (no stemming, 0-1). */
  @JsonProperty("rouge_l")
  ROUGE_L("rouge_l", true, Family.GENERATION);

  /** Which dataset formats a metric is computed for. */
  public enum Family {
    /** Every format: held-out loss and perplexity. */
    ANY,
    /** classification only: from the classifier's predictions. */
    CLASSIFICATION,
    /** completion and chat only: from greedy generation on the held-out prompts. */
    GENERATION
  }

  private final String key;
  private final boolean higherIsBetter;
  private final Family family;

  EvalMetric(String key, boolean higherIsBetter, Family family) {
    this.key = key;
    this.higherIsBetter = higherIsBetter;
    this.family = family;
  }

  /** The key used in metrics.json and status. */
  public String key() {
    return key;
  }

  public boolean higherIsBetter() {
    return higherIsBetter;
  }

  public Family family() {
    return family;
  }

  public boolean classificationOnly() {
    return family == Family.CLASSIFICATION;
  }

  /** Computed from generated text: completion and chat datasets only. */
  public boolean generationOnly() {
    return family == Family.GENERATION;
  }

  /** Whether the trainer computes this metric for a dataset of {@code format}. */
  public boolean appliesTo(DatasetSpec.Format format) {
    return switch (family) {
      case ANY -> true;
      case CLASSIFICATION -> format == DatasetSpec.Format.classification;
      case GENERATION -> format != DatasetSpec.Format.classification;
    };
  }

  /** The formats the metric is computed for, in words (for error messages). */
  public String formatsInWords() {
    return switch (family) {
      case ANY -> "every dataset format";
      case CLASSIFICATION -> "dataset.format classification";
      case GENERATION -> "dataset.format completion or chat";
    };
  }

  /** The metric with this key (as in metrics.json), if any. */
  public static java.util.Optional<EvalMetric> ofKey(String key) {
    for (EvalMetric m : values()) {
      if (m.key.equals(key.toLowerCase(Locale.ROOT))) {
        return java.util.Optional.of(m);
      }
    }
    return java.util.Optional.empty();
  }
}
