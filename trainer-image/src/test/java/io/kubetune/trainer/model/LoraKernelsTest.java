package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class LoraKernelsTest {
  @Test
  void refusesProbabilitiesOutsideTheOpenUnitInterval() {
    assertThatThrownBy(() -> LoraKernels.source(0, 6)).hasMessageContaining("(0, 1)");
    assertThatThrownBy(() -> LoraKernels.source(1, 6)).hasMessageContaining("(0, 1)");
  }

  /**
   * p = 0.7 draws the kept positions instead of the dropped ones; a margin of -3 sigmas draws too
   * few gaps at first, so the top-up loop runs.
   */
  @ParameterizedTest
  @CsvSource({"0.05, 6", "0.5, 6", "0.7, 6", "0.05, -3"})
  void dropsEachElementIndependentlyWithProbabilityPAndKeepsTheRestUnscaled(
      double p, double marginSigmas) {
    Shape shape = new Shape(1023, 1025);
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, p, marginSigmas)) {
      NDArray x = manager.randomUniform(1f, 2f, shape);
      float[] in = x.toFloatArray();
      float[] first = kernels.dropout(x).toFloatArray();
      float[] second = kernels.dropout(x).toFloatArray();
      long n = in.length;
      long dropped = 0;
      long droppedBoth = 0;
      long droppedWithNeighbour = 0;
      // Neighbouring elements must be independent too.
      for (int i = 0; i < n; i++) {
        assertThat(first[i] == 0f || first[i] == in[i]).as("element %d", i).isTrue();
        boolean gone = first[i] == 0f;
        dropped += gone ? 1 : 0;
        droppedBoth += gone && second[i] == 0f ? 1 : 0;
        droppedWithNeighbour += gone && i + 1 < n && first[i + 1] == 0f ? 1 : 0;
      }
      double sigma = Math.sqrt(n * p * (1 - p));
      assertThat((double) dropped).isBetween(n * p - 5 * sigma, n * p + 5 * sigma);
      double pairSigma = Math.sqrt(n * p * p);
      assertThat((double) droppedBoth)
          .isBetween(n * p * p - 5 * pairSigma, n * p * p + 5 * pairSigma);
      assertThat((double) droppedWithNeighbour)
          .isBetween(n * p * p - 5 * pairSigma, n * p * p + 5 * pairSigma);
    }
  }

  @Test
  void reseedingTheEngineDrawsTheSameMask() {
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, 0.3)) {
      NDArray x = manager.ones(new Shape(64, 33));
      Engine.getInstance().setRandomSeed(7);
      float[] first = kernels.dropout(x).toFloatArray();
      float[] other = kernels.dropout(x).toFloatArray();
      Engine.getInstance().setRandomSeed(7);
      float[] again = kernels.dropout(x).toFloatArray();
      assertThat(again).containsExactly(first);
      assertThat(other).isNotEqualTo(first);
    }
  }

  @Test
  void gradientPassesThroughKeptElementsOnly() {
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, 0.4)) {
      NDArray x = manager.randomUniform(1f, 2f, new Shape(16, 40));
      NDArray w = manager.randomUniform(-1f, 1f, new Shape(16, 40));
      x.setRequiresGradient(true);
      float[] out;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray y = kernels.dropout(x);
        out = y.toFloatArray();
        collector.backward(y.mul(w).sum());
      }
      float[] gradient = x.getGradient().toFloatArray();
      float[] weights = w.toFloatArray();
      int kept = 0;
      for (int i = 0; i < out.length; i++) {
        boolean keptHere = out[i] != 0f;
        kept += keptHere ? 1 : 0;
        assertThat(gradient[i]).isEqualTo(keptHere ? weights[i] : 0f);
      }
      assertThat(kept).isBetween(1, out.length - 1);
    }
  }
}
