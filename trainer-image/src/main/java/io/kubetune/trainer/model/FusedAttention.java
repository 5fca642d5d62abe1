package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Causal attention as one libtorch call, {@code scaled_dot_product_attention} (a {@link
 * ScriptedModule}; DJL 0.36 does not expose it). On the CPU libtorch runs its fused flash-attention
 * kernel for it, forward and backward: blocks of the (seq, seq) scores live only inside the kernel,
 * where the separate ops materialise the scores, their softmax and both gradients for every head.
 * The scale is libtorch's default, 1/sqrt(head_dim), the same as the model's.
 */
final class FusedAttention implements AutoCloseable {
  static final String SOURCE =
      """
        def forward(self: __torch__.FusedAttention,
          q: Tensor,
          k: Tensor,
          v: Tensor) -> Tensor:
          return torch.scaled_dot_product_attention(q, k, v, None, 0., True)
      """;

  private final ScriptedModule module;

  private FusedAttention(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the module on the manager's device; close it (or the manager) when done. */
  static FusedAttention compile(NDManager manager) {
    return new FusedAttention(ScriptedModule.compile(manager, "FusedAttention", SOURCE));
  }

  /**
   * softmax(q k^T / sqrt(d) + causal mask) v for q, k, v of shape (batch, heads, seq, head_dim),
   * with as many key/value heads as query heads; differentiable with respect to all three.
   */
  NDArray causal(NDArray q, NDArray k, NDArray v) {
    return module.call(null, q, k, v);
  }

  @Override
  public void close() {
    module.close();
  }
}
