package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Locale;

/**
 * LoRA dropout drawn fast, as a {@link ScriptedModule}.
 *
 * <p>libtorch's dropout draws its masks with a serial kernel on the CPU (a double-precision
 * Bernoulli draw per element on one core, then a float mask, its rescaling and the product: 0.5 s
 * of a 1.6 s LoRA step at the 18M benchmark shape). Here each element gets one 31-bit integer draw,
 * uniform over [0, 2^31), and is kept when it is at least {@link #keepThreshold}, so it is dropped
 * with probability {@code round(p * 2^31) / 2^31}, within 2^-32 of p (finer than a float uniform's
 * 2^-24). Only the draw is serial; the comparison and the masking run in parallel, and autograd
 * keeps a one-byte mask instead of a float one. (Two elements per 64-bit draw would halve the
 * serial part, but TorchScript cannot reinterpret int64 as int32, and splitting the words with
 * bitwise ops cost more than it saved.) The draws come from libtorch's default generator, so
 * reseeding it reproduces the masks (resume and recomputation rely on that), and on CUDA from its
 * Philox generator.
 *
 * <p>Kept elements are not rescaled by 1/(1-p): the caller folds that factor into the adapter's
 * scaling, which multiplies the rank-r activations, a much smaller array.
 */
final class LoraKernels implements AutoCloseable {
  private static final double TWO_TO_31 = 2147483648.0;

  private final ScriptedModule module;

  private LoraKernels(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the kernels for dropout probability {@code p} (0 < p < 1) on the manager's device. */
  static LoraKernels compile(NDManager manager, double p) {
    return new LoraKernels(ScriptedModule.compile(manager, "LoraKernels", source(p)));
  }

  /** x where the element's draw keeps it, else 0; differentiable with respect to x. */
  NDArray dropout(NDArray x) {
    return module.call("dropout", x);
  }

  /** The draw in [0, 2^31) at or above which an element is kept: round(p * 2^31). */
  static long keepThreshold(double p) {
    if (!(p > 0 && p < 1)) {
      throw new IllegalArgumentException("dropout probability must be in (0, 1), got " + p);
    }
    return Math.round(p * TWO_TO_31);
  }

  static String source(double p) {
    return String.format(
        Locale.ROOT,
        """
        class LoraKernels(Module):
          __parameters__ = []
          __buffers__ = []
          training : bool
          def forward(self: __torch__.LoraKernels,
            x: Tensor) -> Tensor:
            return x
          def dropout(self: __torch__.LoraKernels,
            x: Tensor) -> Tensor:
            draws = torch.empty(torch.size(x), dtype=3, layout=None, device=ops.prim.device(x), pin_memory=None)
            draws0 = torch.random_(draws, 0, 2147483648)
            return torch.where(torch.ge(draws0, %d), x, 0.)
        """,
        keepThreshold(p));
  }

  @Override
  public void close() {
    module.close();
  }
}
