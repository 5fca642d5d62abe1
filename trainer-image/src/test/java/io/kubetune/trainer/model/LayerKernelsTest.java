package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.List;
import org.junit.jupiter.api.Test;

class LayerKernelsTest {
  /**
   * A fused group of three members, the second without an adapter (a block of zero rows): each
   * member's columns get its own {@code h_i B_i^T} and the second's are left as they were; the
   * gradients of h, B and the base output are those of the per-member products and adds.
   */
  @Test
  void addsEachMembersUpProjectionIntoItsOwnColumnsWithThePerMemberGradients() {
    Engine.getInstance().setRandomSeed(7);
    long rows = 6;
    long[] widths = {5, 3, 4};
    try (NDManager manager = NDManager.newBaseManager();
        LayerKernels kernels = LayerKernels.compile(manager)) {
      NDArray h0 = manager.randomNormal(new Shape(2, 3, 2));
      NDArray h2 = manager.randomNormal(new Shape(2, 3, 2));
      NDArray b0 = manager.randomNormal(new Shape(widths[0], 2));
      NDArray b2 = manager.randomNormal(new Shape(widths[2], 2));
      NDArray base = manager.randomNormal(new Shape(rows, 12));
      NDArray weight = manager.randomNormal(new Shape(rows, 12));
      for (NDArray a : List.of(h0, h2, b0, b2, base)) {
        a.setRequiresGradient(true);
      }

      float[] fused;
      float[][] fusedGradients;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        // A fresh array, as a projection's output is: the kernel writes into it.
        NDArray y = base.add(manager.zeros(base.getShape()));
        NDArray out =
            kernels.addUpProjections(
                List.of(h0, h2),
                List.of(b0.transpose(), manager.zeros(new Shape(0, widths[1])), b2.transpose()),
                y);
        fused = out.toFloatArray();
        collector.backward(out.mul(weight).sum());
        fusedGradients = gradients(h0, h2, b0, b2, base);
      }
      for (NDArray a : List.of(h0, h2, b0, b2, base)) {
        a.getGradient().muli(0);
      }

      float[] separate;
      float[][] separateGradients;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray d0 = h0.reshape(rows, 2).matMul(b0.transpose());
        NDArray d1 = manager.zeros(new Shape(rows, widths[1]));
        NDArray d2 = h2.reshape(rows, 2).matMul(b2.transpose());
        NDArray out = base.add(d0.concat(d1, 1).concat(d2, 1));
        separate = out.toFloatArray();
        collector.backward(out.mul(weight).sum());
        separateGradients = gradients(h0, h2, b0, b2, base);
      }

      assertThat(fused).containsExactly(separate, within(1e-5f));
      float[] plain = base.toFloatArray();
      for (int r = 0; r < rows; r++) {
        for (int c = 5; c < 8; c++) {
          assertThat(fused[r * 12 + c]).as("untargeted column %d", c).isEqualTo(plain[r * 12 + c]);
        }
      }
      for (int i = 0; i < fusedGradients.length; i++) {
        assertThat(fusedGradients[i])
            .as("gradient %d", i)
            .containsExactly(separateGradients[i], within(1e-5f));
      }
    }
  }

  /**
   * Members of different ranks and scalings that read the same x: the stacked product gives each
   * member's {@code (x A_i^T) s_i} in its own columns, with the gradients of x and each A of the
   * per-member products.
   */
  @Test
  void stacksTheMembersDownProjectionsWithThePerMemberGradients() {
    Engine.getInstance().setRandomSeed(11);
    try (NDManager manager = NDManager.newBaseManager();
        LayerKernels kernels = LayerKernels.compile(manager)) {
      NDArray x = manager.randomNormal(new Shape(6, 5));
      NDArray a0 = manager.randomNormal(new Shape(2, 5));
      NDArray a1 = manager.randomNormal(new Shape(3, 5));
      NDArray weight = manager.randomNormal(new Shape(6, 5));
      for (NDArray a : List.of(x, a0, a1)) {
        a.setRequiresGradient(true);
      }

      float[] stacked;
      float[][] stackedGradients;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray out =
            kernels.downProjections(
                x,
                List.of(a0.reshape(2, 5), a1.reshape(3, 5)),
                manager.create(new float[] {0.5f, 0.5f, 2f, 2f, 2f}));
        stacked = out.toFloatArray();
        collector.backward(out.mul(weight).sum());
        stackedGradients = gradients(x, a0, a1);
      }
      for (NDArray a : List.of(x, a0, a1)) {
        a.getGradient().muli(0);
      }

      float[] separate;
      float[][] separateGradients;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray h0 = x.matMul(a0.transpose()).mul(0.5f);
        NDArray h1 = x.matMul(a1.transpose()).mul(2f);
        NDArray out = h0.concat(h1, 1);
        separate = out.toFloatArray();
        collector.backward(out.mul(weight).sum());
        separateGradients = gradients(x, a0, a1);
      }

      assertThat(stacked).containsExactly(separate, within(1e-5f));
      for (int i = 0; i < stackedGradients.length; i++) {
        assertThat(stackedGradients[i])
            .as("gradient %d", i)
            .containsExactly(separateGradients[i], within(1e-5f));
      }
    }
  }

  /**
   * The gated activation on the packed gate/up output, through KubeTune's native operator (where it
   * loads) and through libtorch's ops: both equal silu(gate) * up of the two halves written with
   * DJL's ops, and the packed gradient equals the halves' gradients side by side.
   */
  @Test
  void packedGatedActivationEqualsSiluTimesUpOnEveryPath() {
    onEachPathWidthAndThreadCount(
        (kernels, width) -> {
          NDManager manager = kernels.manager;
          NDArray packed = manager.randomNormal(new Shape(3, 11, 2 * width)).mul(3);
          NDArray weight = manager.randomNormal(new Shape(3, 11, width));
          packed.setRequiresGradient(true);
          float[][] kernel;
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray out = kernels.layer.swiGluPacked(packed);
            assertThat(out.getShape()).isEqualTo(new Shape(3, 11, width));
            collector.backward(out.mul(weight).sum());
            kernel = new float[][] {out.toFloatArray(), packed.getGradient().toFloatArray()};
          }
          packed.getGradient().muli(0);
          float[][] reference;
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            ai.djl.ndarray.NDList halves = packed.split(2, 2);
            NDArray gate = halves.get(0);
            NDArray out = gate.mul(gate.getNDArrayInternal().sigmoid()).mul(halves.get(1));
            collector.backward(out.mul(weight).sum());
            reference = new float[][] {out.toFloatArray(), packed.getGradient().toFloatArray()};
          }
          return new float[][][] {kernel, reference};
        });
  }

  /**
   * A bf16 gate/up output (a bf16 model's MLP) gives a bf16 activation equal to the float kernel's
   * result rounded once, and a bf16 gradient equal to the float gradient of the widened values
   * rounded once: bit for bit.
   */
  @Test
  void packedGatedActivationInBf16IsTheFloatOneRoundedOnce() {
    onEachPathWidthAndThreadCount(
        (kernels, width) -> {
          NDManager manager = kernels.manager;
          try (Bf16Ops bf16 = Bf16Ops.load(manager)) {
            NDArray packed = manager.randomNormal(new Shape(3, 11, 2 * width)).mul(3);
            NDArray weight = manager.randomNormal(new Shape(3, 11, width));
            packed.setRequiresGradient(true);
            float[][] kernel;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
              NDArray out = bf16.toFloat32(kernels.layer.swiGluPacked(bf16.toBf16(packed)));
              collector.backward(out.mul(weight).sum());
              kernel = new float[][] {out.toFloatArray(), packed.getGradient().toFloatArray()};
            }
            packed.getGradient().muli(0);
            float[][] reference;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
              NDArray wide = bf16.toFloat32(bf16.toBf16(packed));
              NDArray out = bf16.toFloat32(bf16.toBf16(kernels.layer.swiGluPacked(wide)));
              collector.backward(out.mul(weight).sum());
              reference = new float[][] {out.toFloatArray(), packed.getGradient().toFloatArray()};
            }
            return new float[][][] {kernel, reference};
          }
        });
  }

  /**
   * Rotary embedding through KubeTune's native operator (where it loads) and through libtorch's
   * ops: both equal {@code x · cos + cat(-x2, x1) · sin} written with DJL's ops, with x's gradient,
   * for x seen per head through a transpose (the projection's output, as the model passes it).
   */
  @Test
  void rotaryEqualsTheReferenceFormulaWithItsGradientOnEveryPath() {
    onEachPathWidthAndThreadCount(
        (kernels, width) -> {
          NDManager manager = kernels.manager;
          int dim = 2 * width;
          int seq = 5;
          NDArray projected = manager.randomNormal(new Shape(2, seq, 3, dim));
          NDArray cos = manager.randomNormal(new Shape(1, 1, seq, dim));
          NDArray sin = manager.randomNormal(new Shape(1, 1, seq, dim));
          NDArray weight = manager.randomNormal(new Shape(2, 3, seq, dim));
          projected.setRequiresGradient(true);
          float[][] kernel;
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray out = kernels.layer.rotary(projected.transpose(0, 2, 1, 3), cos, sin);
            assertThat(out.getShape()).isEqualTo(new Shape(2, 3, seq, dim));
            collector.backward(out.mul(weight).sum());
            kernel = new float[][] {out.toFloatArray(), projected.getGradient().toFloatArray()};
          }
          projected.getGradient().muli(0);
          float[][] reference;
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray x = projected.transpose(0, 2, 1, 3);
            NDArray rotated = x.get("..., " + width + ":").neg().concat(x.get("..., :" + width), 3);
            NDArray out = x.mul(cos).add(rotated.mul(sin));
            collector.backward(out.mul(weight).sum());
            reference = new float[][] {out.toFloatArray(), projected.getGradient().toFloatArray()};
          }
          return new float[][][] {kernel, reference};
        });
  }

  /**
   * RMSNorm through KubeTune's native operator (where it loads) and through libtorch's ops: both
   * equal {@code x · rsqrt(mean(x²) + eps) · weight} written with DJL's ops, with the gradients of
   * x and of the weight (trained in full fine-tuning).
   */
  @Test
  void rmsNormEqualsTheReferenceFormulaWithItsGradientsOnEveryPath() {
    onEachPathWidthAndThreadCount(
        (kernels, width) -> {
          NDManager manager = kernels.manager;
          NDArray x = manager.randomNormal(new Shape(3, 11, width)).mul(2);
          NDArray normWeight = manager.randomNormal(new Shape(width)).add(1);
          NDArray weight = manager.randomNormal(new Shape(3, 11, width));
          NDArray eps = manager.create(1e-5f);
          x.setRequiresGradient(true);
          normWeight.setRequiresGradient(true);
          float[][] kernel;
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray out = kernels.layer.rmsNorm(x, normWeight, eps);
            assertThat(out.getShape()).isEqualTo(x.getShape());
            collector.backward(out.mul(weight).sum());
            kernel =
                new float[][] {
                  out.toFloatArray(),
                  x.getGradient().toFloatArray(),
                  normWeight.getGradient().toFloatArray()
                };
          }
          x.getGradient().muli(0);
          normWeight.getGradient().muli(0);
          float[][] reference;
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray meanSquare = x.mul(x).mean(new int[] {2}, true);
            NDArray out = x.div(meanSquare.add(1e-5f).sqrt()).mul(normWeight);
            collector.backward(out.mul(weight).sum());
            reference =
                new float[][] {
                  out.toFloatArray(),
                  x.getGradient().toFloatArray(),
                  normWeight.getGradient().toFloatArray()
                };
          }
          return new float[][][] {kernel, reference};
        });
  }

  private record Kernels(NDManager manager, LayerKernels layer) {}

  /** A check's outputs and gradients: {kernel's, reference's}, each a list of arrays. */
  private interface Check {
    float[][][] run(Kernels kernels, int width);
  }

  /** Where a check runs: the native operators, vectorized or not, or libtorch's ops. */
  private enum Path {
    NATIVE,
    NATIVE_FALLBACK,
    LIBTORCH
  }

  /**
   * Runs {@code check} with the native operators (where they load; vectorized where the CPU has
   * AVX2 and FMA, and with the fallback a CPU without them runs) and with libtorch's ops, at widths
   * 13 (the vector loop's tail only) and 40 (full lanes and a tail), on one and on two intra-op
   * threads (tests run on one; the kernels split rows over threads and RMSNorm's weight gradient
   * sums the threads' partial sums), and compares the kernel's arrays with the reference's.
   */
  private static void onEachPathWidthAndThreadCount(Check check) {
    List<Path> paths =
        NativeKernels.status().loaded()
            ? List.of(Path.NATIVE, Path.NATIVE_FALLBACK, Path.LIBTORCH)
            : List.of(Path.LIBTORCH);
    int threads = ai.djl.pytorch.jni.JniUtils.getNumThreads();
    try {
      for (int threadCount : new int[] {1, 2}) {
        ai.djl.pytorch.jni.JniUtils.setNumThreads(threadCount);
        for (Path path : paths) {
          if (path == Path.NATIVE_FALLBACK) {
            assertThat(NativeKernels.useVectorizedKernels(false)).isFalse();
          }
          try {
            for (int width : new int[] {13, 40}) {
              Engine.getInstance().setRandomSeed(width);
              try (NDManager manager = NDManager.newBaseManager();
                  LayerKernels layer = LayerKernels.compile(manager, path != Path.LIBTORCH)) {
                float[][][] results = check.run(new Kernels(manager, layer), width);
                String where = path + ", width " + width + ", threads " + threadCount;
                for (int i = 0; i < results[0].length; i++) {
                  assertThat(results[0][i])
                      .as(where + ", array " + i)
                      .containsExactly(results[1][i], within(1e-4f));
                }
              }
            }
          } finally {
            if (path == Path.NATIVE_FALLBACK) {
              NativeKernels.useVectorizedKernels(true);
            }
          }
        }
      }
    } finally {
      ai.djl.pytorch.jni.JniUtils.setNumThreads(threads);
    }
  }

  private static float[][] gradients(NDArray... arrays) {
    float[][] out = new float[arrays.length][];
    for (int i = 0; i < arrays.length; i++) {
      out[i] = arrays[i].getGradient().toFloatArray();
    }
    return out;
  }
}
