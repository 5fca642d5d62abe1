package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.kubetune.trainer.model.Bf16Ops;
import java.util.ArrayList;
import java.util.List;

/**
 * Summed next-token negative log-likelihood over the vocabulary, computed a few rows at a time so
 * that the (tokens, vocab) logits of the whole batch, their log-softmax and the gradients of both
 * never exist at once (at Qwen2.5-0.5B's vocabulary of 151,936, batch 2 x 254, each of those is 309
 * MB).
 *
 * <p>Only rows that carry a target (weight non-zero) are computed. For row i with hidden state h_i,
 * target t_i and weight w_i, the loss is sum_i w_i (lse_i - z_i) with z_i = h_i . W[t_i] and lse_i
 * = log sum_v exp(h_i . W[v]). The z term is small and goes through autograd as it is. The lse term
 * is computed chunk by chunk outside autograd, and so is its exact gradient, softmax_i w_i W for h
 * and the sum of w_i softmax_i^T h_i for W (when the head is trained); the returned array carries
 * them into the backward pass as {@code s - detach(s)} with {@code s = sum (h . g_h) + sum (W .
 * g_W)}, which is zero in value and has exactly that gradient. The value of the result is the loss;
 * its gradient equals that of {@code -sum w log_softmax(h W^T)[t]}.
 */
final class ChunkedCrossEntropy {
  /**
   * Logit elements per chunk: 128 MiB of fp32 (220 rows at a 151,936-token vocabulary). The softmax
   * is computed in place (LogitKernels), so this is about all the chunk costs; larger chunks mean
   * fewer passes over the head weight.
   */
  static final long CHUNK_ELEMENTS = 32L << 20;

  private ChunkedCrossEntropy() {}

  /**
   * @param hidden final hidden states (batch, seq, hidden)
   * @param head the output projection (vocab, hidden)
   * @param headBf16 the model's bf16 ops when {@code head} is held in bf16 (products then run in
   *     bf16 with fp32 accumulation; logits, softmax and the loss stay fp32), else null
   * @param targets next-token ids per position, flattened (batch * seq)
   * @param weights per position: 1 where the position has a target, 0 elsewhere
   * @param scope the step's manager; arrays made here must outlive the backward pass
   * @param training whether a backward pass follows (the hidden states then need gradients; DJL's
   *     {@code hasGradient()} answers false for results of ops, so it is not asked)
   * @param kernels the per-chunk computation, compiled on the head's device for its precision
   */
  static NDArray summedNll(
      NDArray hidden,
      NDArray head,
      Bf16Ops headBf16,
      long[] targets,
      float[] weights,
      NDManager scope,
      boolean training,
      LogitKernels kernels) {
    return summedNll(
        hidden, head, headBf16, targets, weights, scope, training, kernels, CHUNK_ELEMENTS);
  }

  /** As above with a chosen chunk size (logit elements), for tests. */
  static NDArray summedNll(
      NDArray hidden,
      NDArray head,
      Bf16Ops headBf16,
      long[] targets,
      float[] weights,
      NDManager scope,
      boolean training,
      LogitKernels kernels,
      long chunkElements) {
    long width = hidden.getShape().get(hidden.getShape().dimension() - 1);
    long vocab = head.getShape().get(0);
    int count = 0;
    for (float w : weights) {
      if (w != 0) {
        count++;
      }
    }
    long[] rows = new long[count];
    long[] rowTargets = new long[count];
    float[] rowWeights = new float[count];
    for (int i = 0, r = 0; i < weights.length; i++) {
      if (weights[i] != 0) {
        rows[r] = i;
        rowTargets[r] = targets[i];
        rowWeights[r] = weights[i];
        r++;
      }
    }
    if (count == 0) {
      return hidden.sum().mul(scope.create(0f));
    }
    NDArray rowIndex = scope.create(rows);
    NDArray targetIndex = scope.create(rowTargets);
    NDArray w = scope.create(rowWeights, new Shape(count, 1));
    NDArray flat = hidden.reshape(weights.length, width);
    NDArray selected = rowsOf(flat, rowIndex);
    // z_i = h_i . W[t_i] through autograd (gradients to h and, when trained, to W's rows).
    // Arrays derived from the head would join the model's manager: keep them in the step's.
    NDArray headRows = rowsOf(head, targetIndex);
    headRows.attach(scope);
    if (headBf16 != null) {
      headRows = headBf16.toFloat32(headRows); // exact
    }
    NDArray z = selected.mul(headRows).sum(new int[] {1}, true);
    NDArray zTerm = z.mul(w).sum();

    boolean needsGradient = training;
    // A bf16 head is frozen by construction (only frozen weights are converted).
    boolean headTrained = headBf16 == null && head.hasGradient();
    NDArray h = selected.stopGradient();
    NDArray weight = head.stopGradient();
    weight.attach(scope);
    long chunk = Math.max(1, chunkElements / vocab);
    double lseSum = 0;
    List<NDArray> hiddenGradients = new ArrayList<>();
    NDArray headGradient = null;
    for (long from = 0; from < count; from += chunk) {
      long to = Math.min(count, from + chunk);
      try (NDManager chunkScope = scope.newSubManager()) {
        NDArray hc = h.get(new NDIndex("{}:{}", from, to));
        NDArray wc = w.get(new NDIndex("{}:{}", from, to));
        hc.attach(chunkScope);
        wc.attach(chunkScope);
        if (!needsGradient) {
          NDArray chunkLseSum = kernels.lseSum(hc, weight, wc);
          chunkLseSum.attach(chunkScope);
          lseSum += chunkLseSum.getFloat();
          continue;
        }
        NDList results =
            headTrained
                ? kernels.withGradients(hc, weight, wc)
                : kernels.withHiddenGradient(hc, weight, wc);
        results.attach(chunkScope);
        lseSum += results.get(0).getFloat();
        NDArray gh = results.get(1);
        gh.attach(scope);
        hiddenGradients.add(gh);
        if (headTrained) {
          NDArray gw = results.get(2);
          if (headGradient == null) {
            gw.attach(scope);
            headGradient = gw;
          } else {
            headGradient.addi(gw);
          }
        }
      }
    }
    NDArray lseConstant = scope.create((float) lseSum);
    NDArray value = zTerm.neg().add(lseConstant);
    if (!needsGradient) {
      return value;
    }
    NDArray gh =
        hiddenGradients.size() == 1
            ? hiddenGradients.get(0)
            : NDArrays.concat(new NDList(hiddenGradients), 0);
    NDArray surrogate = gh.mul(selected).sum();
    if (headGradient != null) {
      surrogate = surrogate.add(headGradient.mul(head).sum());
    }
    return surrogate.sub(surrogate.stopGradient()).add(value);
  }

  /**
   * Rows {@code index} of {@code table}, differentiable with respect to the table (advanced
   * indexing).
   */
  private static NDArray rowsOf(NDArray table, NDArray index) {
    return table.get(new NDIndex("{}", index));
  }
}
