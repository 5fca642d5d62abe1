package io.kubetune.trainer.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * ROUGE-L F1 exactly as Google's {@code rouge-score} package computes it with {@code
 * RougeScorer(['rougeL'], use_stemmer=False)} (its default): text lower-cased, every run of
 * characters other than {@code a-z0-9} a separator, no stemming; the longest common subsequence of
 * tokens gives precision (over the prediction) and recall (over the reference). A corpus score is
 * the mean of the per-pair F1 values (scores on a 0–1 scale). Pure.
 */
public final class RougeL {
  private RougeL() {}

  /** One pair's precision, recall and F-measure, as {@code rouge_score.scoring.Score}. */
  public record Score(double precision, double recall, double fmeasure) {}

  /** Mean ROUGE-L F1 over the pairs (0 for an empty corpus). */
  public static double corpusF1(List<String> predictions, List<String> references) {
    if (predictions.size() != references.size()) {
      throw new IllegalArgumentException(
          predictions.size() + " predictions but " + references.size() + " references");
    }
    if (predictions.isEmpty()) {
      return 0;
    }
    double sum = 0;
    for (int i = 0; i < predictions.size(); i++) {
      sum += score(references.get(i), predictions.get(i)).fmeasure();
    }
    return sum / predictions.size();
  }

  /** {@code RougeScorer.score(target, prediction)['rougeL']}. */
  public static Score score(String target, String prediction) {
    List<String> t = tokenize(target);
    List<String> p = tokenize(prediction);
    if (t.isEmpty() || p.isEmpty()) {
      return new Score(0, 0, 0);
    }
    int lcs = lcsLength(t, p);
    double precision = (double) lcs / p.size();
    double recall = (double) lcs / t.size();
    double f = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
    return new Score(precision, recall, f);
  }

  /** {@code rouge_score.tokenize.tokenize(text, stemmer=None)}. */
  static List<String> tokenize(String text) {
    String lower = text.toLowerCase(Locale.ROOT);
    List<String> tokens = new ArrayList<>();
    int start = -1;
    for (int i = 0; i < lower.length(); i++) {
      char c = lower.charAt(i);
      boolean kept = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      if (kept && start < 0) {
        start = i;
      } else if (!kept && start >= 0) {
        tokens.add(lower.substring(start, i));
        start = -1;
      }
    }
    if (start >= 0) {
      tokens.add(lower.substring(start));
    }
    return tokens;
  }

  private static int lcsLength(List<String> a, List<String> b) {
    int[] previous = new int[b.size() + 1];
    int[] current = new int[b.size() + 1];
    for (int i = 1; i <= a.size(); i++) {
      for (int j = 1; j <= b.size(); j++) {
        current[j] =
            a.get(i - 1).equals(b.get(j - 1))
                ? previous[j - 1] + 1
                : Math.max(previous[j], current[j - 1]);
      }
      int[] swap = previous;
      previous = current;
      current = swap;
    }
    return previous[b.size()];
  }
}
