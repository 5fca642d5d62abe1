package io.kubetune.trainer.eval;

import io.kubetune.api.v1alpha1.EvalMetric;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Scores generated answers against references: exact match (share of answers equal to their
 * reference once surrounding whitespace is stripped, 0–1), corpus BLEU ({@link Bleu}, sacreBLEU's
 * 0–100) and mean ROUGE-L F1 ({@link RougeL}, 0–1). Pure.
 */
public record GenerationMetrics(double exactMatch, double bleu, double rougeL, int examples) {

  public static GenerationMetrics of(List<String> predictions, List<String> references) {
    if (predictions.size() != references.size()) {
      throw new IllegalArgumentException(
          predictions.size() + " predictions but " + references.size() + " references");
    }
    if (predictions.isEmpty()) {
      throw new IllegalArgumentException("no examples to score");
    }
    int exact = 0;
    for (int i = 0; i < predictions.size(); i++) {
      if (predictions.get(i).strip().equals(references.get(i).strip())) {
        exact++;
      }
    }
    return new GenerationMetrics(
        (double) exact / predictions.size(),
        Bleu.corpus(predictions, references).score(),
        RougeL.corpusF1(predictions, references),
        predictions.size());
  }

  /** By metric key (exact_match, bleu, rouge_l), in that order. */
  public Map<String, Double> asMap() {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put(EvalMetric.EXACT_MATCH.key(), exactMatch);
    m.put(EvalMetric.BLEU.key(), bleu);
    m.put(EvalMetric.ROUGE_L.key(), rougeL);
    return m;
  }
}
