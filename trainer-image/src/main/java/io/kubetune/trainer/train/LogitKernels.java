package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import io.kubetune.trainer.model.ScriptedModule;

/**
 * One chunk of {@link ChunkedCrossEntropy}'s vocabulary-wide work as one libtorch call: the logits
 * of a few rows, their log-sum-exp and the gradients, with the softmax computed in place in the
 * logits' buffer. The same math as separate DJL ops, with half the passes over the chunk and no
 * chunk-sized temporaries (each would be a fresh allocation the kernel must zero).
 *
 * <p>Inputs are outside autograd (detached): h (rows, hidden), the head weight (vocab, hidden) and
 * the row weights w (rows, 1). Results: {@code sum_i w_i lse_i}; with gradients, also {@code g_h =
 * (w_i softmax_i) W} and, when the head is trained, {@code g_W = (w softmax)^T h}.
 */
final class LogitKernels implements AutoCloseable {
  /**
   * The module's source. With a bf16 head the two products with it cast their fp32 operand to bf16
   * (fp32 accumulation inside the GEMM), as under torch.autocast; the loss is computed in fp32. (A
   * trained head is never bf16, so g_W is fp32 only.) With KubeTune's native operator ({@code
   * kubetune::weighted_softmax_}) the softmax is taken in three passes over each row while it stays
   * in cache, on the product's own output: a bf16 chunk is neither widened for it nor narrowed for
   * the backward product (the operator computes in float and rounds each result once, as those
   * casts would). Without it, libtorch's ops on the fp32 logits.
   */
  static String source(boolean bf16Head, boolean nativeKernel) {
    String wideLogits =
        bf16Head ? "torch.to(torch.linear(torch.to(h, 15), weight), 6)" : "torch.linear(h, weight)";
    String hiddenGradient =
        bf16Head
            ? "torch.to(torch.matmul(torch.to(weighted, 15), weight), 6)"
            : "torch.matmul(weighted, weight)";
    String weightedSoftmax;
    if (nativeKernel) {
      weightedSoftmax =
          """
            logits = %s
            lse_sum = ops.kubetune.weighted_softmax_(logits, w)
            return (lse_sum, logits)
          """
              .formatted(bf16Head ? "torch.linear(torch.to(h, 15), weight)" : wideLogits);
    } else {
      weightedSoftmax =
          """
            logits = %s
            maxes = torch.amax(logits, [1], True)
            exps = torch.exp_(torch.sub_(logits, maxes))
            sums = torch.sum(exps, [1], True)
            lse_sum = torch.sum(torch.mul(torch.add(torch.log(sums), maxes), w))
            return (lse_sum, torch.mul_(exps, torch.div(w, sums)))
          """
              .formatted(wideLogits);
    }
    return String.format(
        java.util.Locale.ROOT,
        """
        def forward(self: __torch__.LogitKernels,
          h: Tensor,
          weight: Tensor,
          w: Tensor) -> Tensor:
          logits = %1$s
          return torch.sum(torch.mul(torch.logsumexp(logits, [1], True), w))
        def weighted_softmax(self: __torch__.LogitKernels,
          h: Tensor,
          weight: Tensor,
          w: Tensor) -> Tuple[Tensor, Tensor]:
      %3$s
        def hidden_gradient(self: __torch__.LogitKernels,
          h: Tensor,
          weight: Tensor,
          w: Tensor) -> Tuple[Tensor, Tensor]:
          lse_sum, weighted = (self).weighted_softmax(h, weight, w)
          return (lse_sum, %2$s)
        def gradients(self: __torch__.LogitKernels,
          h: Tensor,
          weight: Tensor,
          w: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
          lse_sum, weighted = (self).weighted_softmax(h, weight, w)
          return (lse_sum, %2$s, torch.matmul(torch.t(weighted), h))
      """,
        wideLogits,
        hiddenGradient,
        weightedSoftmax.indent(2).stripTrailing());
  }

  private final ScriptedModule module;

  private LogitKernels(ScriptedModule module) {
    this.module = module;
  }

  /**
   * Compiles the kernels for a head held in fp32 or bf16 on the manager's device; close them (or
   * the manager) when done.
   */
  static LogitKernels compile(NDManager manager, boolean bf16Head) {
    boolean nativeKernel =
        ai.djl.Device.Type.CPU.equals(manager.getDevice().getDeviceType())
            && io.kubetune.trainer.model.NativeKernels.status().loaded();
    return compile(manager, bf16Head, nativeKernel);
  }

  /** As {@link #compile(NDManager, boolean)}, with the native operator or not. */
  static LogitKernels compile(NDManager manager, boolean bf16Head, boolean nativeKernel) {
    return new LogitKernels(
        ScriptedModule.compile(manager, "LogitKernels", source(bf16Head, nativeKernel)));
  }

  /** {@code sum_i w_i lse_i} of the chunk, a scalar. */
  NDArray lseSum(NDArray h, NDArray weight, NDArray w) {
    return module.call(null, h, weight, w);
  }

  /** [lse sum, g_h]. */
  NDList withHiddenGradient(NDArray h, NDArray weight, NDArray w) {
    return module.callForAll("hidden_gradient", h, weight, w);
  }

  /** [lse sum, g_h, g_W]. */
  NDList withGradients(NDArray h, NDArray weight, NDArray w) {
    return module.callForAll("gradients", h, weight, w);
  }

  @Override
  public void close() {
    module.close();
  }
}
