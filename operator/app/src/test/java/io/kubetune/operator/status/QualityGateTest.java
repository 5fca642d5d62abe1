package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.GateSpec;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class QualityGateTest {
  static final Map<String, Double> BASE = Map.of("accuracy", 0.20, "eval_loss", 1.60);
  static final Map<String, Double> TUNED = Map.of("accuracy", 0.88, "eval_loss", 0.71);

  @Test
  void thresholdOnAHigherIsBetterMetric() {
    QualityGate.Decision pass =
        QualityGate.evaluate(gate(EvalMetric.ACCURACY, 0.8, null, null), BASE, TUNED);
    assertThat(pass.passed()).isTrue();
    assertThat(pass.reason()).isEqualTo("QualityGatePassed");
    assertThat(pass.message()).contains("0.8800").contains("0.8000").contains("base 0.2000");

    QualityGate.Decision fail =
        QualityGate.evaluate(gate(EvalMetric.ACCURACY, 0.9, null, null), BASE, TUNED);
    assertThat(fail.passed()).isFalse();
    assertThat(fail.reason()).isEqualTo("QualityGateFailed");
    assertThat(fail.message()).contains("0.8800 is not >= threshold 0.9000");
  }

  @Test
  void thresholdOnALowerIsBetterMetric() {
    assertThat(
            QualityGate.evaluate(gate(EvalMetric.EVAL_LOSS, 0.8, null, null), BASE, TUNED).passed())
        .isTrue();
    assertThat(
            QualityGate.evaluate(gate(EvalMetric.EVAL_LOSS, 0.5, null, null), BASE, TUNED).passed())
        .isFalse();
  }

  @Test
  void mustBeatBaseWithAMargin() {
    assertThat(
            QualityGate.evaluate(gate(EvalMetric.EVAL_LOSS, null, true, 0.5), BASE, TUNED).passed())
        .isTrue(); // 1.60 - 0.71 = 0.89 >= 0.5
    QualityGate.Decision fail =
        QualityGate.evaluate(gate(EvalMetric.EVAL_LOSS, null, true, 1.0), BASE, TUNED);
    assertThat(fail.passed()).isFalse();
    assertThat(fail.message())
        .contains("0.7100")
        .contains("1.6000")
        .contains("minimum margin 1.0000");
    // Equal is not beating.
    assertThat(
            QualityGate.evaluate(gate(EvalMetric.ACCURACY, null, true, null), BASE, BASE).passed())
        .isFalse();
  }

  @Test
  void generationMetricsAreHigherIsBetterAndTheMessageNamesBothFigures() {
    Map<String, Double> base = Map.of("exact_match", 0.0, "bleu", 3.1, "rouge_l", 0.21);
    Map<String, Double> tuned = Map.of("exact_match", 0.9, "bleu", 71.4, "rouge_l", 0.93);
    Map<String, Double> worse = Map.of("exact_match", 0.0, "bleu", 1.2, "rouge_l", 0.1);
    for (EvalMetric m : List.of(EvalMetric.EXACT_MATCH, EvalMetric.BLEU, EvalMetric.ROUGE_L)) {
      assertThat(m.higherIsBetter()).isTrue();
      assertThat(QualityGate.evaluate(gate(m, null, true, null), base, tuned).passed())
          .as(m.key())
          .isTrue();
      assertThat(QualityGate.evaluate(gate(m, null, true, null), base, worse).passed())
          .as(m.key())
          .isFalse();
    }
    QualityGate.Decision pass =
        QualityGate.evaluate(gate(EvalMetric.BLEU, null, true, 20.0), base, tuned);
    assertThat(pass.passed()).isTrue();
    assertThat(pass.message()).contains("tuned bleu 71.4000 vs base 3.1000");
    QualityGate.Decision threshold =
        QualityGate.evaluate(gate(EvalMetric.BLEU, 80.0, null, null), base, tuned);
    assertThat(threshold.passed()).isFalse();
    assertThat(threshold.message()).contains("71.4000 is not >= threshold 80.0000 (base 3.1000)");
  }

  @Test
  void missingMetricsFailClosed() {
    QualityGate.Decision noTuned =
        QualityGate.evaluate(gate(EvalMetric.F1, 0.5, null, null), BASE, TUNED);
    assertThat(noTuned.passed()).isFalse();
    assertThat(noTuned.reason()).isEqualTo("MetricsUnavailable");
    assertThat(
            QualityGate.evaluate(gate(EvalMetric.ACCURACY, null, true, null), null, TUNED).reason())
        .isEqualTo("MetricsUnavailable");
    assertThat(QualityGate.evaluate(null, null, null).passed()).isTrue();
  }

  private static GateSpec gate(
      EvalMetric metric, Double threshold, Boolean mustBeatBase, Double margin) {
    GateSpec gate = new GateSpec();
    gate.metric = metric;
    gate.threshold = threshold;
    gate.mustBeatBase = mustBeatBase;
    gate.minMargin = margin;
    return gate;
  }
}
