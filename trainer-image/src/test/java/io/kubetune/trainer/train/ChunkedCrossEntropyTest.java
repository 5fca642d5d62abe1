package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.kubetune.trainer.model.Bf16Ops;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The chunked loss equals log-softmax + gather in value and in every gradient, with KubeTune's
 * native softmax operator (where it loads) and with libtorch's ops.
 */
class ChunkedCrossEntropyTest {
  private static final int BATCH = 3;
  private static final int SEQ = 7;
  private static final int HIDDEN = 16;
  private static final int VOCAB = 37;

  @Test
  void lossAndGradientsMatchTheWholeVocabularyLogSoftmaxOverSeveralChunks() {
    Random random = new Random(3);
    long[] targets = new long[BATCH * SEQ];
    float[] weights = new float[BATCH * SEQ];
    for (int i = 0; i < targets.length; i++) {
      targets[i] = random.nextInt(VOCAB);
      weights[i] = random.nextInt(4) == 0 ? 0f : 1f;
    }
    for (String path : paths()) {
      boolean nativeKernel = !path.equals("libtorch");
      boolean fallback = path.equals("native fallback");
      if (fallback) {
        assertThat(io.kubetune.trainer.model.NativeKernels.useVectorizedKernels(false)).isFalse();
      }
      try {
        for (boolean headTrained : new boolean[] {false, true}) {
          try (NDManager root = NDManager.newBaseManager()) {
            NDArray hidden =
                root.randomNormal(0, 2f, new Shape(BATCH, SEQ, HIDDEN), DataType.FLOAT32);
            NDArray head = root.randomNormal(0, 1f, new Shape(VOCAB, HIDDEN), DataType.FLOAT32);
            float[][] reference = run(root, hidden, head, headTrained, false, targets, weights, 0);
            // 4 rows per chunk: the 15-odd target rows span several chunks and a partial last one.
            float[][] chunked =
                run(root, hidden, head, headTrained, nativeKernel, targets, weights, 4L * VOCAB);
            assertThat(chunked[0][0]).isCloseTo(reference[0][0], within(1e-4f * reference[0][0]));
            assertClose(chunked[1], reference[1], 1e-5f);
            if (headTrained) {
              assertClose(chunked[2], reference[2], 1e-5f);
            }
            assertThat(reference[1]).isNotEqualTo(new float[reference[1].length]);
          }
        }
      } finally {
        if (fallback) {
          io.kubetune.trainer.model.NativeKernels.useVectorizedKernels(true);
        }
      }
    }
  }

  /**
   * With a bf16 head the native operator takes the softmax of the bf16 product's output and writes
   * it in bf16 for the backward product: the same loss and hidden-state gradient as libtorch's ops
   * on the widened logits, whose softmax is rounded to bf16 for that product.
   */
  @Test
  void aBf16HeadGivesTheSameLossAndGradientOnBothPaths() {
    org.assertj.core.api.Assumptions.assumeThat(
            io.kubetune.trainer.model.NativeKernels.status().loaded())
        .isTrue();
    Random random = new Random(5);
    long[] targets = new long[BATCH * SEQ];
    float[] weights = new float[BATCH * SEQ];
    for (int i = 0; i < targets.length; i++) {
      targets[i] = random.nextInt(VOCAB);
      weights[i] = 1f;
    }
    try (NDManager root = NDManager.newBaseManager();
        Bf16Ops bf16 = Bf16Ops.load(root)) {
      NDArray hidden = root.randomNormal(0, 2f, new Shape(BATCH, SEQ, HIDDEN), DataType.FLOAT32);
      NDArray head =
          bf16.toBf16(root.randomNormal(0, 1f, new Shape(VOCAB, HIDDEN), DataType.FLOAT32));
      float[][] results = new float[2][];
      float[] losses = new float[2];
      for (boolean nativeKernel : new boolean[] {false, true}) {
        try (NDManager scope = root.newSubManager()) {
          NDArray h = hidden.duplicate();
          h.attach(scope);
          h.setRequiresGradient(true);
          LogitKernels kernels = LogitKernels.compile(scope, true, nativeKernel);
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray nll =
                ChunkedCrossEntropy.summedNll(
                    h.mul(scope.create(1.5f)),
                    head,
                    bf16,
                    targets,
                    weights,
                    scope,
                    true,
                    kernels,
                    4L * VOCAB);
            losses[nativeKernel ? 1 : 0] = nll.getFloat();
            collector.backward(nll);
          }
          results[nativeKernel ? 1 : 0] = h.getGradient().toFloatArray();
        }
      }
      assertThat(losses[1]).isCloseTo(losses[0], within(1e-5f * losses[0]));
      // Each path rounds the softmax to bf16 for the backward product: a last-bit difference
      // before that rounding can move an element by one bf16 step (2^-8 relative).
      assertClose(results[1], results[0], 1e-3f);
      assertThat(results[0]).isNotEqualTo(new float[results[0].length]);
    }
  }

  /** The native operator, vectorized and as the fallback a CPU without AVX2 runs, and libtorch. */
  private static java.util.List<String> paths() {
    return io.kubetune.trainer.model.NativeKernels.status().loaded()
        ? java.util.List.of("native", "native fallback", "libtorch")
        : java.util.List.of("libtorch");
  }

  /** {loss}, gradient of the hidden states, gradient of the head (chunk 0: the plain path). */
  private static float[][] run(
      NDManager root,
      NDArray hiddenValues,
      NDArray headValues,
      boolean headTrained,
      boolean nativeKernel,
      long[] targets,
      float[] weights,
      long chunkElements) {
    try (NDManager scope = root.newSubManager()) {
      NDArray hidden = hiddenValues.duplicate();
      NDArray head = headValues.duplicate();
      hidden.attach(scope);
      head.attach(scope);
      hidden.setRequiresGradient(true);
      if (headTrained) {
        head.setRequiresGradient(true);
      }
      float loss;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        // An op in front, as the decoder's final norm is: the hidden states are not a leaf.
        NDArray h = hidden.mul(scope.create(1.5f));
        NDArray nll;
        if (chunkElements == 0) {
          NDArray logProbs = h.getNDArrayInternal().linear(h, head, null).singletonOrThrow();
          nll =
              logProbs
                  .logSoftmax(2)
                  .gather(scope.create(targets, new Shape(BATCH, SEQ, 1)), 2)
                  .reshape(BATCH, SEQ)
                  .mul(scope.create(weights, new Shape(BATCH, SEQ)))
                  .sum()
                  .neg();
        } else {
          LogitKernels kernels = LogitKernels.compile(scope, false, nativeKernel);
          nll =
              ChunkedCrossEntropy.summedNll(
                  h, head, null, targets, weights, scope, true, kernels, chunkElements);
          // Without a backward pass (evaluation) only the value is computed: the same value.
          float evaluated =
              ChunkedCrossEntropy.summedNll(
                      h, head, null, targets, weights, scope, false, kernels, chunkElements)
                  .getFloat();
          assertThat(evaluated).isCloseTo(nll.getFloat(), within(1e-5f * nll.getFloat()));
        }
        loss = nll.getFloat();
        collector.backward(nll.div(scope.create(3f)));
      }
      float[] headGradient = headTrained ? head.getGradient().toFloatArray() : new float[0];
      return new float[][] {{loss}, hidden.getGradient().toFloatArray(), headGradient};
    }
  }

  private static void assertClose(float[] actual, float[] expected, float relative) {
    assertThat(actual).hasSameSizeAs(expected);
    float scale = 0;
    for (float e : expected) {
      scale = Math.max(scale, Math.abs(e));
    }
    for (int i = 0; i < expected.length; i++) {
      assertThat(actual[i]).as("element %d", i).isCloseTo(expected[i], within(relative * scale));
    }
  }
}
