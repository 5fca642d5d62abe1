package io.kubetune.trainer.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.Testbed;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Bleu} and {@link RougeL} against the reference implementations from PyPI (sacreBLEU and
 * rouge-score, pinned in src/test/python/requirements.txt) on a fixed set of sentence pairs that
 * exercise the 13a tokenizer's rules (punctuation, numbers, dashes, entities, whitespace, Unicode),
 * BLEU's brevity penalty and smoothing, and ROUGE-L's tokenizer.
 */
class GenerationMetricsReferenceTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** {hypothesis, reference}. */
  static final List<String[]> PAIRS =
      List.of(
          new String[] {" 2007-01-03", " 2007-01-03"},
          new String[] {" 2007-01-30", " 2007-01-03"},
          new String[] {"2007-1-3", " 2007-01-03"},
          new String[] {"The cat sat on the mat.", "The cat is sitting on the mat."},
          new String[] {"the quick brown fox", "The quick brown fox jumps over the lazy dog."},
          new String[] {"", "an empty answer gets nothing"},
          new String[] {"completely different words here", "nothing in common at all"},
          new String[] {
            "It costs $1,000.50, or 1.000,50 EUR.", "It costs $1,000.50 (about 1.000,50 EUR)."
          },
          new String[] {
            "Tom &amp; Jerry &quot;quoted&quot; &lt;b&gt;", "Tom & Jerry \"quoted\" <b>"
          },
          new String[] {"line one\nline two-\nwrapped", "line one line twowrapped"},
          new String[] {"<skipped> tab\there  and   spaces  ", "tab here and spaces"},
          new String[] {"Café déjà vu — naïve résumé", "cafe deja vu - naive resume"},
          new String[] {"中文 句子 测试", "中文 句子 测试"},
          new String[] {"Hello, World! How's it going?", "hello world how is it going"},
          new String[] {"a b c d e f g h", "a b c d e f g h i j k l"},
          new String[] {
            "x-ray 3-4 pm e.g. U.S.A. {braces} [brackets] ~tilde~ `tick` @at",
            "x-ray 3 - 4 pm e.g. U.S.A. {braces} [brackets] ~tilde~ `tick` @at"
          },
          new String[] {"ISO: 2007-01-03\u00a0\u2003", "2007-01-03"},
          new String[] {"repeat repeat repeat repeat", "repeat once"});

  static JsonNode reference;

  @BeforeAll
  static void runReference(@TempDir Path dir) throws Exception {
    List<String> hyps = new ArrayList<>();
    List<String> refs = new ArrayList<>();
    for (String[] p : PAIRS) {
      hyps.add(p[0]);
      refs.add(p[1]);
    }
    Path request = dir.resolve("pairs.json");
    Files.writeString(
        request, JSON.writeValueAsString(Map.of("hypotheses", hyps, "references", refs)));
    reference =
        JSON.readTree(
            Testbed.run("generation_metrics_reference.py", List.of(request.toString()), 120)
                .orThrow());
  }

  private static List<String> hypotheses() {
    return PAIRS.stream().map(p -> p[0]).toList();
  }

  private static List<String> references() {
    return PAIRS.stream().map(p -> p[1]).toList();
  }

  @Test
  void tokenizer13aMatchesSacreBleu() {
    List<String> texts = new ArrayList<>(hypotheses());
    texts.addAll(references());
    for (int i = 0; i < texts.size(); i++) {
      assertThat(Bleu.tokenize13a(Bleu.rstrip(texts.get(i))))
          .as("13a tokens of %s", JSON.valueToTree(texts.get(i)))
          .isEqualTo(reference.get("tokens_13a").get(i).asText());
    }
  }

  @Test
  void corpusBleuMatchesSacreBleu() {
    Bleu.Score score = Bleu.corpus(hypotheses(), references());
    JsonNode counts = reference.get("corpus_counts");
    for (int n = 0; n < Bleu.MAX_ORDER; n++) {
      assertThat(score.correct()[n])
          .as("correct %d-grams", n + 1)
          .isEqualTo(counts.get("correct").get(n).asLong());
      assertThat(score.total()[n])
          .as("total %d-grams", n + 1)
          .isEqualTo(counts.get("total").get(n).asLong());
    }
    assertThat(score.hypothesisLength()).isEqualTo(counts.get("sys_len").asLong());
    assertThat(score.referenceLength()).isEqualTo(counts.get("ref_len").asLong());
    assertThat(score.score()).isCloseTo(reference.get("corpus_bleu").asDouble(), within(1e-9));
    assertThat(score.score()).isBetween(1.0, 99.0); // a real mix: neither 0 nor 100
  }

  @Test
  void eachPairAloneMatchesSacreBleu() {
    // Single pairs hit the edge cases: empty hypothesis, brevity penalty, missing n-gram orders
    // (exp smoothing), perfect matches.
    for (int i = 0; i < PAIRS.size(); i++) {
      double expected = reference.get("pair_bleu").get(i).asDouble();
      assertThat(Bleu.corpus(List.of(PAIRS.get(i)[0]), List.of(PAIRS.get(i)[1])).score())
          .as("BLEU of pair %d %s", i, JSON.valueToTree(PAIRS.get(i)))
          .isCloseTo(expected, within(1e-9));
    }
  }

  @Test
  void rougeLMatchesRougeScore() {
    double sum = 0;
    for (int i = 0; i < PAIRS.size(); i++) {
      JsonNode expected = reference.get("rouge_l").get(i);
      RougeL.Score score = RougeL.score(PAIRS.get(i)[1], PAIRS.get(i)[0]);
      String as = "ROUGE-L of pair " + i + " " + JSON.valueToTree(PAIRS.get(i));
      assertThat(score.precision())
          .as(as)
          .isCloseTo(expected.get("precision").asDouble(), within(1e-12));
      assertThat(score.recall()).as(as).isCloseTo(expected.get("recall").asDouble(), within(1e-12));
      assertThat(score.fmeasure())
          .as(as)
          .isCloseTo(expected.get("fmeasure").asDouble(), within(1e-12));
      sum += expected.get("fmeasure").asDouble();
    }
    assertThat(RougeL.corpusF1(hypotheses(), references()))
        .isCloseTo(sum / PAIRS.size(), within(1e-12));
  }
}
