package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class OptimizerKernelsTest {

  private static NDArray random(NDManager manager, Random random, long... shape) {
    float[] values = new float[(int) new Shape(shape).size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return manager.create(values, new Shape(shape));
  }

  @Test
  void adamwIsTheSameArithmeticAsThePerArrayOpsItReplaces() {
    try (NDManager root = NDManager.newBaseManager();
        OptimizerKernels kernels = OptimizerKernels.compile(root)) {
      Random random = new Random(7);
      long[][] shapes = {{8, 64}, {64, 8}, {64}};
      boolean[] decayed = {true, false, true};
      List<NDArray> params = new ArrayList<>();
      List<NDArray> expected = new ArrayList<>();
      List<NDArray> firsts = new ArrayList<>();
      List<NDArray> seconds = new ArrayList<>();
      List<NDArray> expectedFirsts = new ArrayList<>();
      List<NDArray> expectedSeconds = new ArrayList<>();
      for (long[] shape : shapes) {
        NDArray p = random(root, random, shape);
        params.add(p);
        expected.add(p.duplicate());
        firsts.add(root.zeros(new Shape(shape)));
        seconds.add(root.zeros(new Shape(shape)));
        expectedFirsts.add(root.zeros(new Shape(shape)));
        expectedSeconds.add(root.zeros(new Shape(shape)));
      }
      double lr = 3e-3;
      double weightDecay = 0.01;
      double scale = 0.37;
      for (int step = 1; step <= 3; step++) {
        double c1 = 1 - Math.pow(AdamW.BETA1, step);
        double c2 = 1 - Math.pow(AdamW.BETA2, step);
        List<NDArray> grads = new ArrayList<>();
        try (NDManager scope = root.newSubManager()) {
          for (long[] shape : shapes) {
            grads.add(random(scope, random, shape));
          }
          // The per-array DJL code this kernel replaced, op for op.
          for (int i = 0; i < shapes.length; i++) {
            NDArray g = grads.get(i).duplicate().muli((float) scale);
            NDArray m = expectedFirsts.get(i);
            NDArray v = expectedSeconds.get(i);
            NDArray p = expected.get(i);
            m.muli((float) AdamW.BETA1).addi(g.mul((float) (1 - AdamW.BETA1)));
            v.muli((float) AdamW.BETA2).addi(g.square().muli((float) (1 - AdamW.BETA2)));
            if (decayed[i]) {
              p.muli((float) (1 - lr * weightDecay));
            }
            NDArray denominator = v.div((float) c2).sqrt();
            denominator.addi((float) AdamW.EPSILON);
            p.subi(m.div((float) c1).divi(denominator).muli((float) lr));
          }
          kernels.adamw(
              params,
              grads,
              firsts,
              seconds,
              decayed,
              scale,
              lr,
              c1,
              c2,
              1 - lr * weightDecay,
              scope);
          for (int i = 0; i < shapes.length; i++) {
            assertThat(params.get(i).toFloatArray())
                .as("parameter %d after step %d", i, step)
                .containsExactly(expected.get(i).toFloatArray());
            assertThat(firsts.get(i).toFloatArray())
                .containsExactly(expectedFirsts.get(i).toFloatArray());
            assertThat(seconds.get(i).toFloatArray())
                .containsExactly(expectedSeconds.get(i).toFloatArray());
          }
        }
      }
    }
  }

  @Test
  void sumsOfSquaresAndZeroWorkPerArrayAndKeepTheCallersNames() {
    try (NDManager root = NDManager.newBaseManager();
        OptimizerKernels kernels = OptimizerKernels.compile(root)) {
      Random random = new Random(3);
      NDArray a = random(root, random, 16, 4);
      NDArray b = random(root, random, 5);
      a.setName("mine");
      float[] sums = kernels.sumsOfSquares(List.of(a, b));
      assertThat(sums).containsExactly(a.square().sum().getFloat(), b.square().sum().getFloat());
      assertThat(a.getName()).isEqualTo("mine");
      assertThat(b.getName()).isNull();
      kernels.zero(List.of(a, b));
      assertThat(a.toFloatArray()).containsOnly(0f);
      assertThat(b.toFloatArray()).containsOnly(0f);
      assertThatThrownBy(() -> kernels.zero(List.of()))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("empty");
    }
  }
}
