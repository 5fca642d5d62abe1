package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class OptimizerMathTest {

  @Test
  void adamWMatchesTheReferenceFormulaAndSkipsDecayOnNorms() {
    try (NDManager root = NDManager.newBaseManager();
        AdamW adam = new AdamW(root, 0.1, Set.of("model.norm.weight"))) {
      NDArray w = root.create(new float[] {1f, -2f});
      NDArray norm = root.create(new float[] {1f, -2f});
      double[] reference = {1, -2};
      double[] m = new double[2];
      double[] v = new double[2];
      double lr = 0.01;
      for (int t = 1; t <= 3; t++) {
        float[] g = {0.5f * t, -0.25f};
        try (NDManager scope = root.newSubManager()) {
          adam.update(
              Map.of("w", w, "model.norm.weight", norm),
              Map.of("w", scope.create(g), "model.norm.weight", scope.create(g)),
              lr,
              scope);
        }
        for (int i = 0; i < 2; i++) {
          m[i] = 0.9 * m[i] + 0.1 * g[i];
          v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
          double mHat = m[i] / (1 - Math.pow(0.9, t));
          double vHat = v[i] / (1 - Math.pow(0.999, t));
          reference[i] = reference[i] * (1 - lr * 0.1) - lr * mHat / (Math.sqrt(vHat) + 1e-8);
        }
      }
      assertThat(w.toFloatArray()[0]).isCloseTo((float) reference[0], within(1e-6f));
      assertThat(w.toFloatArray()[1]).isCloseTo((float) reference[1], within(1e-6f));
      assertThat(norm.toFloatArray()[0]).as("no decay").isGreaterThan(w.toFloatArray()[0]);
      assertThat(adam.step()).isEqualTo(3);
      assertThat(adam.firstMoment()).containsKeys("w", "model.norm.weight");
    }
  }

  @Test
  void scheduleWarmsUpLinearlyThenDecaysAlongACosine() {
    LearningRateSchedule s = new LearningRateSchedule(1e-3, 10, 110);
    assertThat(s.at(0)).isZero();
    assertThat(s.at(5)).isCloseTo(5e-4, within(1e-12));
    assertThat(s.at(10)).isCloseTo(1e-3, within(1e-12));
    assertThat(s.at(60)).isCloseTo(5e-4, within(1e-12));
    assertThat(s.at(110)).isCloseTo(0, within(1e-12));
  }

  @Test
  void macroMetricsAverageOverClasses() {
    ClassificationMetrics m =
        ClassificationMetrics.of(new int[] {0, 0, 1, 1, 2, 0}, new int[] {0, 1, 1, 1, 2, 2}, 3);
    assertThat(m.accuracy()).isCloseTo(4.0 / 6, within(1e-9));
    // precision: c0 1/3, c1 2/2, c2 1/1; recall: c0 1/1, c1 2/3, c2 1/2
    assertThat(m.precision()).isCloseTo((1.0 / 3 + 1 + 1) / 3, within(1e-9));
    assertThat(m.recall()).isCloseTo((1 + 2.0 / 3 + 0.5) / 3, within(1e-9));
    double f0 = 2 * (1.0 / 3) / (1.0 / 3 + 1);
    double f1 = 2 * (2.0 / 3) / (1 + 2.0 / 3);
    double f2 = 2 * 0.5 / 1.5;
    assertThat(m.f1()).isCloseTo((f0 + f1 + f2) / 3, within(1e-9));
  }
}
