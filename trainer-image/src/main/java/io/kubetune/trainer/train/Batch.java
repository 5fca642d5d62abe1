package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.kubetune.trainer.data.Example;
import java.util.List;

/**
 * Examples padded on the right to a common length. With right padding and a causal mask, real
 * tokens never attend to padding, so no padding mask is needed; padded positions carry no loss.
 */
public final class Batch {
  final int size;
  final int length;
  final long[] tokens;
  final long[] targets;
  final float[] targetWeights;
  final long[] lastIndex;
  final long[] labels;
  final int tokenCount;
  final int targetCount;

  private Batch(List<Example> examples, int[] indices, long padId) {
    size = indices.length;
    int max = 0;
    for (int i : indices) {
      max = Math.max(max, examples.get(i).tokens().length);
    }
    length = max;
    tokens = new long[size * length];
    targets = new long[size * length];
    targetWeights = new float[size * length];
    lastIndex = new long[size];
    labels = new long[size];
    int tokensSeen = 0;
    int targetsSeen = 0;
    for (int b = 0; b < size; b++) {
      Example e = examples.get(indices[b]);
      int n = e.tokens().length;
      java.util.Arrays.fill(tokens, b * length, (b + 1) * length, padId);
      System.arraycopy(e.tokens(), 0, tokens, b * length, n);
      // Position t predicts token t+1.
      for (int t = 0; t + 1 < n; t++) {
        if (e.trainOn()[t + 1]) {
          targets[b * length + t] = e.tokens()[t + 1];
          targetWeights[b * length + t] = 1f;
          targetsSeen++;
        }
      }
      lastIndex[b] = n - 1;
      labels[b] = e.label();
      tokensSeen += n;
    }
    tokenCount = tokensSeen;
    targetCount = e0IsClassification(examples, indices) ? size : targetsSeen;
  }

  private static boolean e0IsClassification(List<Example> examples, int[] indices) {
    return examples.get(indices[0]).label() != Example.NO_LABEL;
  }

  public static Batch of(List<Example> examples, int[] indices, long padId) {
    return new Batch(examples, indices, padId);
  }

  public boolean classification() {
    return labels[0] != Example.NO_LABEL;
  }

  NDArray tokens(NDManager scope) {
    return scope.create(tokens, new Shape(size, length));
  }

  /** Index for gathering each row's last real hidden state: (batch, 1, hidden). */
  NDArray lastIndex(NDManager scope, int hidden) {
    long[] index = new long[size * hidden];
    for (int b = 0; b < size; b++) {
      java.util.Arrays.fill(index, b * hidden, (b + 1) * hidden, lastIndex[b]);
    }
    return scope.create(index, new Shape(size, 1, hidden));
  }

  NDArray labels(NDManager scope) {
    return scope.create(labels, new Shape(size, 1));
  }

  public int tokenCount() {
    return tokenCount;
  }

  public int targetCount() {
    return targetCount;
  }
}
