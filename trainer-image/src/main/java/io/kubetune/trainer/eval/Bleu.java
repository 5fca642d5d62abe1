package io.kubetune.trainer.eval;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Corpus BLEU exactly as sacreBLEU 2.x computes it with its defaults ({@code corpus_bleu(hyps,
 * [refs])}): the "13a" tokenisation (mteval-v13a), case-sensitive, n-grams up to 4 clipped by the
 * reference, the brevity penalty over the whole corpus, and the "exp" smoothing (a missing n-gram
 * order counts as 1/2^k of a match, mteval's rule). One reference per hypothesis. The score is on
 * sacreBLEU's 0–100 scale, so numbers agree with it directly. Pure.
 */
public final class Bleu {
  /** The highest n-gram order (sacreBLEU's default). */
  public static final int MAX_ORDER = 4;

  private Bleu() {}

  /** The corpus score and its parts, as sacreBLEU's {@code BLEUScore}. */
  public record Score(
      double score,
      long[] correct,
      long[] total,
      double[] precisions,
      double brevityPenalty,
      long hypothesisLength,
      long referenceLength) {}

  /**
   * Corpus BLEU of {@code hypotheses} against {@code references} (one per hypothesis, same order).
   */
  public static Score corpus(List<String> hypotheses, List<String> references) {
    if (hypotheses.size() != references.size()) {
      throw new IllegalArgumentException(
          hypotheses.size() + " hypotheses but " + references.size() + " references");
    }
    long[] correct = new long[MAX_ORDER];
    long[] total = new long[MAX_ORDER];
    long hypLength = 0;
    long refLength = 0;
    for (int i = 0; i < hypotheses.size(); i++) {
      List<String> hyp = words(tokenize13a(rstrip(hypotheses.get(i))));
      List<String> ref = words(tokenize13a(rstrip(references.get(i))));
      hypLength += hyp.size();
      refLength += ref.size();
      for (int n = 1; n <= MAX_ORDER; n++) {
        Map<List<String>, Integer> hypCounts = ngrams(hyp, n);
        Map<List<String>, Integer> refCounts = ngrams(ref, n);
        for (Map.Entry<List<String>, Integer> e : hypCounts.entrySet()) {
          correct[n - 1] += Math.min(e.getValue(), refCounts.getOrDefault(e.getKey(), 0));
        }
        total[n - 1] += Math.max(0, hyp.size() - n + 1);
      }
    }
    return score(correct, total, hypLength, refLength);
  }

  /** sacreBLEU's {@code compute_bleu} with {@code smooth_method='exp'}, no effective order. */
  static Score score(long[] correct, long[] total, long hypLength, long refLength) {
    double bp;
    if (hypLength < refLength) {
      bp = hypLength > 0 ? Math.exp(1 - (double) refLength / hypLength) : 0.0;
    } else {
      bp = 1.0;
    }
    double[] precisions = new double[MAX_ORDER];
    boolean anyCorrect = false;
    for (long c : correct) {
      anyCorrect |= c != 0;
    }
    if (!anyCorrect) {
      return new Score(0.0, correct, total, precisions, bp, hypLength, refLength);
    }
    double smooth = 1.0;
    for (int n = 1; n <= MAX_ORDER; n++) {
      if (total[n - 1] == 0) {
        break; // the precision stays 0: the score is 0, as in sacreBLEU
      }
      if (correct[n - 1] == 0) {
        smooth *= 2;
        precisions[n - 1] = 100.0 / (smooth * total[n - 1]);
      } else {
        precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
      }
    }
    double logSum = 0;
    for (double p : precisions) {
      logSum += p == 0 ? -9999999999.0 : Math.log(p);
    }
    double score = bp * Math.exp(logSum / MAX_ORDER);
    return new Score(score, correct, total, precisions, bp, hypLength, refLength);
  }

  private static Map<List<String>, Integer> ngrams(List<String> words, int n) {
    Map<List<String>, Integer> counts = new HashMap<>();
    for (int i = 0; i + n <= words.size(); i++) {
      counts.merge(List.copyOf(words.subList(i, i + n)), 1, Integer::sum);
    }
    return counts;
  }

  // ---- the 13a tokenizer: sacrebleu/tokenizers/tokenizer_13a.py and tokenizer_re.py ----

  /** Punctuation and symbols: {@code [\{-\~\[-\` -\&\(-\+\:-\@\/]}, each set apart. */
  private static final Pattern SYMBOLS =
      Pattern.compile("([\\{-\\~\\[-\\` -\\&\\(-\\+\\:-\\@\\/])");

  /** Period and comma unless preceded by a digit. */
  private static final Pattern PERIOD_COMMA_AFTER = Pattern.compile("([^0-9])([\\.,])");

  /** Period and comma unless followed by a digit. */
  private static final Pattern PERIOD_COMMA_BEFORE = Pattern.compile("([\\.,])([^0-9])");

  /** A dash preceded by a digit. */
  private static final Pattern DIGIT_DASH = Pattern.compile("([0-9])(-)");

  /** sacreBLEU's {@code Tokenizer13a()(line)}: tokens joined by single spaces. */
  public static String tokenize13a(String line) {
    line = line.replace("<skipped>", "");
    line = line.replace("-\n", "");
    line = line.replace("\n", " ");
    if (line.contains("&")) {
      line = line.replace("&quot;", "\"");
      line = line.replace("&amp;", "&");
      line = line.replace("&lt;", "<");
      line = line.replace("&gt;", ">");
    }
    line = " " + line + " ";
    line = SYMBOLS.matcher(line).replaceAll(" $1 ");
    line = PERIOD_COMMA_AFTER.matcher(line).replaceAll("$1 $2 ");
    line = PERIOD_COMMA_BEFORE.matcher(line).replaceAll(" $1 $2");
    line = DIGIT_DASH.matcher(line).replaceAll("$1 $2 ");
    return String.join(" ", words(line));
  }

  /** Python's {@code str.split()}: runs of Unicode whitespace separate, empty strings dropped. */
  static List<String> words(String text) {
    List<String> words = new ArrayList<>();
    int start = -1;
    for (int i = 0; i < text.length(); i++) {
      if (isPythonWhitespace(text.charAt(i))) {
        if (start >= 0) {
          words.add(text.substring(start, i));
          start = -1;
        }
      } else if (start < 0) {
        start = i;
      }
    }
    if (start >= 0) {
      words.add(text.substring(start));
    }
    return words;
  }

  /** Python's {@code str.rstrip()}. */
  static String rstrip(String text) {
    int end = text.length();
    while (end > 0 && isPythonWhitespace(text.charAt(end - 1))) {
      end--;
    }
    return text.substring(0, end);
  }

  /**
   * Python's {@code str.isspace()} for one character: bidirectional class WS, B or S, or category
   * Zs. All such characters are in the Basic Multilingual Plane.
   */
  static boolean isPythonWhitespace(char c) {
    return switch (c) {
      case '\t', '\n', 0x0B, '\f', '\r', 0x1C, 0x1D, 0x1E, 0x1F, ' ', 0x85, 0xA0, 0x1680 -> true;
      case 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true;
      default -> c >= 0x2000 && c <= 0x200A;
    };
  }
}
