package io.kubetune.trainer.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Hand-computed cases of the generation metrics; the reference comparison is in *ReferenceTest. */
class GenerationMetricsTest {

  @Test
  void identicalAnswersScorePerfectly() {
    GenerationMetrics m =
        GenerationMetrics.of(
            List.of(" 2007-01-03", "the cat sat on the mat"),
            List.of(" 2007-01-03", "the cat sat on the mat"));
    assertThat(m.exactMatch()).isEqualTo(1.0);
    assertThat(m.bleu()).isCloseTo(100.0, within(1e-9));
    assertThat(m.rougeL()).isCloseTo(1.0, within(1e-12));
    assertThat(m.asMap()).containsOnlyKeys("exact_match", "bleu", "rouge_l");
  }

  @Test
  void exactMatchIgnoresSurroundingWhitespaceOnly() {
    GenerationMetrics m =
        GenerationMetrics.of(
            List.of("2007-01-03\n", " 2007-01-3", "2007-01-03"),
            List.of(" 2007-01-03", " 2007-01-03", "2007-01-03 "));
    assertThat(m.exactMatch()).isCloseTo(2.0 / 3, within(1e-12));
  }

  @Test
  void bleuOfAHandComputedPair() {
    // hyp "a b c d e" vs ref "a b c d f": 4/5, 3/4, 2/3, 1/2 matches, equal lengths (BP 1).
    double expected =
        100 * Math.exp((Math.log(0.8) + Math.log(0.75) + Math.log(2.0 / 3) + Math.log(0.5)) / 4);
    assertThat(Bleu.corpus(List.of("a b c d e"), List.of("a b c d f")).score())
        .isCloseTo(expected, within(1e-9));
  }

  @Test
  void bleuAppliesTheBrevityPenaltyAndExpSmoothing() {
    // hyp "a b c" vs ref "a b c d e f": unigrams 3/3, bigrams 2/2, trigrams 1/1, no 4-gram at all
    // (total 0): sacreBLEU stops there and the score is 0.
    assertThat(Bleu.corpus(List.of("a b c"), List.of("a b c d e f")).score()).isZero();
    // hyp "a b c x" vs ref "a b c d e f g h": 3/4, 2/3, 1/2, 0/1 -> smoothed 1/(2*1); BP e^(1-8/4).
    double p4 = 1.0 / 2;
    double expected =
        Math.exp(1 - 8.0 / 4)
            * 100
            * Math.exp((Math.log(0.75) + Math.log(2.0 / 3) + Math.log(0.5) + Math.log(p4)) / 4);
    assertThat(Bleu.corpus(List.of("a b c x"), List.of("a b c d e f g h")).score())
        .isCloseTo(expected, within(1e-9));
  }

  @Test
  void tokenizer13aSplitsPunctuationButKeepsNumbers() {
    assertThat(Bleu.tokenize13a("It costs $1,000.50, really."))
        .isEqualTo("It costs $ 1,000.50 , really .");
    assertThat(Bleu.tokenize13a(" 2007-01-03")).isEqualTo("2007 - 01 - 03");
    assertThat(Bleu.tokenize13a("Tom &amp; Jerry")).isEqualTo("Tom & Jerry");
  }

  @Test
  void rougeLUsesTheLongestCommonSubsequenceOfLowercasedAlphanumericTokens() {
    // ref "The cat sat on the mat" (6), pred "the cat on a mat!" (5): LCS the,cat,on,mat = 4.
    RougeL.Score s = RougeL.score("The cat sat on the mat", "the cat on a mat!");
    assertThat(s.precision()).isCloseTo(4.0 / 5, within(1e-12));
    assertThat(s.recall()).isCloseTo(4.0 / 6, within(1e-12));
    assertThat(s.fmeasure()).isCloseTo(2 * 0.8 * (4.0 / 6) / (0.8 + 4.0 / 6), within(1e-12));
    assertThat(RougeL.tokenize("Café, 2007-01-03!")).containsExactly("caf", "2007", "01", "03");
    assertThat(RougeL.score("something", "").fmeasure()).isZero();
  }

  @Test
  void mismatchedOrEmptyInputsAreRefused() {
    assertThatThrownBy(() -> GenerationMetrics.of(List.of("a"), List.of()))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> GenerationMetrics.of(List.of(), List.of()))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
