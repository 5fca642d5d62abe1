package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * RMSNorm over the last axis, {@code x · rsqrt(mean(x²) + eps) · weight}, written as transformers'
 * {@code LlamaRMSNorm} writes it, as a {@link ScriptedModule}: one native call instead of six, and
 * a multiply by the reciprocal square root instead of a division by the square root, whose backward
 * pass takes two more full-width passes (the quotient rule). The reciprocal rounds differently from
 * the quotient in the last bit; it is the reference's formula.
 */
final class RmsNorm implements AutoCloseable {
  static final String SOURCE =
      """
        def forward(self: __torch__.RmsNorm,
          x: Tensor,
          weight: Tensor,
          eps: Tensor) -> Tensor:
          variance = torch.mean(torch.pow(x, 2), [-1], True)
          return torch.mul(torch.mul(x, torch.rsqrt(torch.add(variance, eps))), weight)
      """;

  private final ScriptedModule module;

  private RmsNorm(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the module on the manager's device; close it (or the manager) when done. */
  static RmsNorm compile(NDManager manager) {
    return new RmsNorm(ScriptedModule.compile(manager, "RmsNorm", SOURCE));
  }

  /**
   * x normalized over its last axis and scaled by {@code weight}; differentiable with respect to
   * both.
   *
   * @param eps a scalar array that outlives the backward pass (see {@link LlamaModel#scalar})
   */
  NDArray apply(NDArray x, NDArray weight, NDArray eps) {
    return module.call(null, x, weight, eps);
  }

  @Override
  public void close() {
    module.close();
  }
}
