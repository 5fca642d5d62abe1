package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonProperty;

/** Evaluation metrics the trainer reports, with the direction that counts as better. */
public enum EvalMetric {
  @JsonProperty("eval_loss")
  EVAL_LOSS("eval_loss", false, false),
  @JsonProperty("perplexity")
  PERPLEXITY("perplexity", false, false),
  @JsonProperty("accuracy")
  ACCURACY("accuracy", true, true),
  @JsonProperty("f1")
  F1("f1", true, true),
  @JsonProperty("precision")
  PRECISION("precision", true, true),
  @JsonProperty("recall")
  RECALL("recall", true, true);

  private final String key;
  private final boolean higherIsBetter;
  private final boolean classificationOnly;

  EvalMetric(String key, boolean higherIsBetter, boolean classificationOnly) {
    this.key = key;
    this.higherIsBetter = higherIsBetter;
    this.classificationOnly = classificationOnly;
  }

  /** The key used in metrics.json and status. */
  public String key() {
    return key;
  }

  public boolean higherIsBetter() {
    return higherIsBetter;
  }

  public boolean classificationOnly() {
    return classificationOnly;
  }
}
