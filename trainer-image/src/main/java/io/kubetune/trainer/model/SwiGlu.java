package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * The MLP's gated activation, {@code silu(gate) * up}, with libtorch's fused SiLU (a {@link
 * ScriptedModule}; DJL 0.36 has no SiLU). Written with DJL's ops as {@code gate * sigmoid(gate) *
 * up} it takes three full-width passes forward and five backward (sigmoid, two products, and the
 * product rule's three); the fused kernel takes one forward and one backward for the SiLU, as the
 * peer's {@code F.silu} does. Same function; the kernel rounds differently in the last bit.
 */
final class SwiGlu implements AutoCloseable {
  static final String SOURCE =
      """
        def forward(self: __torch__.SwiGlu,
          gate: Tensor,
          up: Tensor) -> Tensor:
          return torch.mul(torch.silu(gate), up)
      """;

  private final ScriptedModule module;

  private SwiGlu(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the module on the manager's device; close it (or the manager) when done. */
  static SwiGlu compile(NDManager manager) {
    return new SwiGlu(ScriptedModule.compile(manager, "SwiGlu", SOURCE));
  }

  /** {@code silu(gate) * up}, elementwise; differentiable with respect to both. */
  NDArray apply(NDArray gate, NDArray up) {
    return module.call(null, gate, up);
  }

  @Override
  public void close() {
    module.close();
  }
}
