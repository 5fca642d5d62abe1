package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;
import static org.assertj.core.api.Assumptions.assumeThat;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class LoraKernelsTest {
  @Test
  void refusesProbabilitiesOutsideTheOpenUnitInterval() {
    assertThatThrownBy(() -> LoraKernels.source(0, 6, true)).hasMessageContaining("(0, 1)");
    assertThatThrownBy(() -> LoraKernels.source(1, 6, false)).hasMessageContaining("(0, 1)");
  }

  /** The build makes the native operator for this platform; its absence here is a build fault. */
  @Test
  void nativeKernelsLoadOnLinuxX86_64AndAreUsedOnTheCpu() {
    assumeThat(System.getProperty("os.name") + "-" + System.getProperty("os.arch"))
        .isEqualTo("Linux-amd64");
    assertThat(NativeKernels.status().loaded()).as(NativeKernels.status().detail()).isTrue();
    assertThat(NativeKernels.status().vectorized())
        .as("vectorized kernels on a CPU with AVX2 and FMA")
        .isEqualTo(cpuHas("avx2") && cpuHas("fma"));
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, 0.05)) {
      assertThat(kernels.nativeKernel()).isTrue();
    }
  }

  /**
   * With identity A's (rank = in) member i's block is dropout_i(x) itself, so the masks can be read
   * off. p = 0.7 draws the kept positions instead of the dropped ones. Without the native operator
   * a margin of -3 sigmas draws too few gaps at first, so the top-up loop runs; the native operator
   * has no margin (it draws each block until it is covered), and 1,023 rows span 16 of its blocks,
   * the last one short.
   */
  @ParameterizedTest
  @CsvSource({
    "0.05, 6, true",
    "0.5, 6, true",
    "0.7, 6, true",
    "0.05, 6, false",
    "0.7, 6, false",
    "0.05, -3, false"
  })
  void eachMemberDropsEachElementIndependentlyWithProbabilityPAndKeepsTheRestUnscaled(
      double p, double marginSigmas, boolean nativeKernel) {
    int rows = 1023;
    int width = 65;
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, p, marginSigmas, nativeKernel)) {
      NDArray x = manager.randomUniform(1f, 2f, new Shape(rows, width));
      float[] in = x.toFloatArray();
      List<NDArray> identities = List.of(manager.eye(width), manager.eye(width));
      float[] first = kernels.downProjections(x, identities, manager.create(1f)).toFloatArray();
      float[] second = kernels.downProjections(x, identities, manager.create(1f)).toFloatArray();
      long n = (long) rows * width;
      long[] dropped = new long[2];
      long droppedByBothMembers = 0;
      long droppedInBothCalls = 0;
      long droppedWithNeighbour = 0;
      for (int row = 0; row < rows; row++) {
        for (int col = 0; col < width; col++) {
          float value = in[row * width + col];
          boolean[] gone = new boolean[2];
          for (int member = 0; member < 2; member++) {
            int at = row * 2 * width + member * width + col;
            assertThat(first[at] == 0f || first[at] == value)
                .as("member %d, element (%d, %d): %s of %s", member, row, col, first[at], value)
                .isTrue();
            gone[member] = first[at] == 0f;
            dropped[member] += gone[member] ? 1 : 0;
          }
          int at = row * 2 * width + col;
          droppedByBothMembers += gone[0] && gone[1] ? 1 : 0;
          droppedInBothCalls += gone[0] && second[at] == 0f ? 1 : 0;
          // Neighbouring elements must be independent too.
          droppedWithNeighbour += gone[0] && col + 1 < width && first[at + 1] == 0f ? 1 : 0;
        }
      }
      double sigma = Math.sqrt(n * p * (1 - p));
      for (long count : dropped) {
        assertThat((double) count).isBetween(n * p - 5 * sigma, n * p + 5 * sigma);
      }
      double pairSigma = Math.sqrt(n * p * p);
      double pairs = n * p * p;
      assertThat((double) droppedByBothMembers)
          .isBetween(pairs - 5 * pairSigma, pairs + 5 * pairSigma);
      assertThat((double) droppedInBothCalls)
          .isBetween(pairs - 5 * pairSigma, pairs + 5 * pairSigma);
      double neighbours = rows * (width - 1) * p * p;
      assertThat((double) droppedWithNeighbour)
          .isBetween(neighbours - 5 * pairSigma, neighbours + 5 * pairSigma);
    }
  }

  @ParameterizedTest
  @CsvSource({"true", "false"})
  void reseedingTheEngineDrawsTheSameMasks(boolean nativeKernel) {
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, 0.3, 6, nativeKernel)) {
      NDArray x = manager.ones(new Shape(64, 33));
      List<NDArray> a = List.of(manager.eye(33));
      Engine.getInstance().setRandomSeed(7);
      float[] first = kernels.downProjections(x, a, manager.create(1f)).toFloatArray();
      float[] other = kernels.downProjections(x, a, manager.create(1f)).toFloatArray();
      Engine.getInstance().setRandomSeed(7);
      float[] again = kernels.downProjections(x, a, manager.create(1f)).toFloatArray();
      assertThat(again).containsExactly(first);
      assertThat(other).isNotEqualTo(first);
    }
  }

  /**
   * Output and gradients equal masking x and multiplying, the way PEFT computes it, for three
   * members of rank 4 and a per-column scaling. The masks come from a run with identity A's under
   * the same seed: the masks depend only on the seed and the shapes (members, rows, in), not on r.
   */
  @ParameterizedTest
  @CsvSource({
    "0.1, true, 1",
    "0.7, true, 1",
    "0.1, true, 2",
    "0.7, true, 2",
    "0.1, false, 1",
    "0.7, false, 1"
  })
  void activationsAndGradientsEqualMaskingThenMultiplying(
      double p, boolean nativeKernel, int threadCount) {
    onThreads(
        threadCount, () -> activationsAndGradientsEqualMaskingThenMultiplying(p, nativeKernel));
  }

  /** Rows span three of the native operator's 64-row blocks, the last one short. */
  private void activationsAndGradientsEqualMaskingThenMultiplying(double p, boolean nativeKernel) {
    int rows = 150;
    int width = 40;
    int rank = 4;
    int members = 3;
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, p, 6, nativeKernel)) {
      List<NDArray> identities = new ArrayList<>();
      for (int i = 0; i < members; i++) {
        identities.add(manager.eye(width));
      }
      Engine.getInstance().setRandomSeed(11);
      NDArray masks =
          kernels
              .downProjections(manager.ones(new Shape(rows, width)), identities, manager.create(1f))
              .reshape(rows, members, width);

      NDArray x = manager.randomUniform(-1f, 1f, new Shape(rows, width));
      List<NDArray> a = new ArrayList<>();
      for (int i = 0; i < members; i++) {
        a.add(manager.randomUniform(-1f, 1f, new Shape(rank, width)));
      }
      float[] columnScaling = new float[members * rank];
      for (int i = 0; i < columnScaling.length; i++) {
        columnScaling[i] = 0.5f + i / 8f;
      }
      NDArray scaling = manager.create(columnScaling);
      NDArray weights = manager.randomUniform(-1f, 1f, new Shape(rows, members * rank));

      Engine.getInstance().setRandomSeed(11);
      Gradients fast =
          gradients(x, a, weights, (xs, as) -> kernels.downProjections(xs, as, scaling));
      Gradients reference =
          gradients(
              x,
              a,
              weights,
              (xs, as) -> {
                NDArray[] blocks = new NDArray[members];
                for (int i = 0; i < members; i++) {
                  NDArray mask = masks.get(":, " + i + ", :");
                  blocks[i] = xs.mul(mask).matMul(as.get(i).transpose());
                }
                return NDArrays.concat(new NDList(blocks), 1).mul(scaling);
              });
      assertClose(fast.output(), reference.output());
      assertClose(fast.x(), reference.x());
      for (int i = 0; i < members; i++) {
        assertClose(fast.a().get(i), reference.a().get(i));
      }
    }
  }

  /**
   * With a bf16 x, as the adapters of a bf16 model read it: the same function of the bf16 values,
   * the dense product taken with bf16 copies of the A's (the activations and A's gradient come back
   * fp32, x's in bf16), so equal to masking the widened x and multiplying by the widened bf16 A's
   * within bf16 rounding.
   */
  @ParameterizedTest
  @CsvSource({"0.1, true", "0.7, true", "0.1, false"})
  void aBf16InputGivesTheSameActivationsAndGradientsWithinBf16Rounding(
      double p, boolean nativeKernel) {
    int rows = 150;
    int width = 40;
    int rank = 4;
    int members = 2;
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, p, 6, nativeKernel);
        Bf16Ops bf16 = Bf16Ops.load(manager)) {
      List<NDArray> identities = new ArrayList<>();
      for (int i = 0; i < members; i++) {
        identities.add(manager.eye(width));
      }
      Engine.getInstance().setRandomSeed(13);
      NDArray masks =
          kernels
              .downProjections(
                  bf16.toBf16(manager.ones(new Shape(rows, width))), identities, manager.create(1f))
              .reshape(rows, members, width);
      NDArray x = manager.randomUniform(-1f, 1f, new Shape(rows, width));
      List<NDArray> a = new ArrayList<>();
      for (int i = 0; i < members; i++) {
        a.add(manager.randomUniform(-1f, 1f, new Shape(rank, width)));
      }
      NDArray scaling = manager.create(0.75f);
      NDArray weights = manager.randomUniform(-1f, 1f, new Shape(rows, members * rank));

      Engine.getInstance().setRandomSeed(13);
      Gradients fast =
          gradients(
              x, a, weights, (xs, as) -> kernels.downProjections(bf16.toBf16(xs), as, scaling));
      Gradients reference =
          gradients(
              x,
              a,
              weights,
              (xs, as) -> {
                NDArray wide = bf16.toFloat32(bf16.toBf16(xs));
                NDArray[] blocks = new NDArray[members];
                for (int i = 0; i < members; i++) {
                  NDArray mask = masks.get(":, " + i + ", :");
                  NDArray member = bf16.toFloat32(bf16.toBf16(as.get(i)));
                  blocks[i] = wide.mul(mask).matMul(member.transpose());
                }
                return NDArrays.concat(new NDList(blocks), 1).mul(scaling);
              });
      assertCloseRelative(fast.output(), reference.output(), 1e-2);
      assertCloseRelative(fast.x(), reference.x(), 1e-2);
      for (int i = 0; i < members; i++) {
        assertCloseRelative(fast.a().get(i), reference.a().get(i), 1e-2);
      }
    }
  }

  /**
   * The native operator's blocks are fixed by the shapes, so the thread count cannot change a mask.
   */
  @Test
  void theNativeOperatorDrawsTheSameMasksOnOneThreadAndOnTwo() {
    assumeThat(NativeKernels.status().loaded()).isTrue();
    try (NDManager manager = NDManager.newBaseManager();
        LoraKernels kernels = LoraKernels.compile(manager, 0.05, 6, true)) {
      NDArray x = manager.ones(new Shape(300, 70));
      List<NDArray> identities = List.of(manager.eye(70), manager.eye(70), manager.eye(70));
      float[][] masks = new float[2][];
      for (int threadCount : new int[] {1, 2}) {
        onThreads(
            threadCount,
            () -> {
              Engine.getInstance().setRandomSeed(5);
              masks[threadCount - 1] =
                  kernels.downProjections(x, identities, manager.create(1f)).toFloatArray();
            });
      }
      assertThat(masks[1]).containsExactly(masks[0]);
    }
  }

  private static boolean cpuHas(String flag) {
    try {
      return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
          .filter(line -> line.startsWith("flags"))
          .anyMatch(line -> List.of(line.split("\\s+")).contains(flag));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Runs {@code body} with libtorch on {@code threadCount} threads (tests otherwise run on one).
   */
  private static void onThreads(int threadCount, Runnable body) {
    int threads = JniUtils.getNumThreads();
    try {
      JniUtils.setNumThreads(threadCount);
      body.run();
    } finally {
      JniUtils.setNumThreads(threads);
    }
  }

  private record Gradients(float[] output, float[] x, List<float[]> a) {}

  /** f's output and the gradients of sum(f(x, a) · weights), on fresh copies of x and the A's. */
  private static Gradients gradients(
      NDArray x, List<NDArray> a, NDArray weights, BiFunction<NDArray, List<NDArray>, NDArray> f) {
    NDArray xs = x.duplicate();
    xs.setRequiresGradient(true);
    List<NDArray> as = new ArrayList<>();
    for (NDArray m : a) {
      NDArray copy = m.duplicate();
      copy.setRequiresGradient(true);
      as.add(copy);
    }
    float[] output;
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      NDArray y = f.apply(xs, as);
      output = y.toFloatArray();
      collector.backward(y.mul(weights).sum());
    }
    List<float[]> aGradients = new ArrayList<>();
    as.forEach(m -> aGradients.add(m.getGradient().toFloatArray()));
    return new Gradients(output, xs.getGradient().toFloatArray(), aGradients);
  }

  private static void assertClose(float[] actual, float[] expected) {
    assertThat(actual).hasSameSizeAs(expected);
    for (int i = 0; i < actual.length; i++) {
      assertThat(actual[i]).as("element %d", i).isCloseTo(expected[i], within(1e-5f));
    }
  }

  /** Element by element within {@code relative} of the largest magnitude in {@code expected}. */
  private static void assertCloseRelative(float[] actual, float[] expected, double relative) {
    assertThat(actual).hasSameSizeAs(expected);
    float largest = 0;
    for (float value : expected) {
      largest = Math.max(largest, Math.abs(value));
    }
    for (int i = 0; i < actual.length; i++) {
      assertThat(actual[i])
          .as("element %d", i)
          .isCloseTo(expected[i], within((float) (relative * largest)));
    }
  }
}
