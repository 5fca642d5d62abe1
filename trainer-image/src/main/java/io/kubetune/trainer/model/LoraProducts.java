package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;

/**
 * The adapters' up-projections of one or more projections that share an input, added into the base
 * output in place with one GEMM, as a {@link ScriptedModule}.
 *
 * <p>For the projections of a fused group (q/k/v, gate/up), {@code y (rows, out_1 + ... + out_n)}
 * is the base output and {@code h_i (rows, r_i)} the scaled rank-r activations of member i; the
 * members' {@code B_i^T (r_i, out_i)} form a block-diagonal matrix, so {@code y += cat(h) ·
 * block_diag(B^T)} adds each member's {@code h_i B_i^T} to its own columns and exact zeros
 * elsewhere. A member without an adapter has a block of zero rows. Done this way instead of one
 * product and one add per member, it saves, per member, a full-width output array and the pass that
 * adds it. And the {@code block_diag} copy of the B's is row-major, which makes libtorch compute
 * B's gradient as {@code h^T · grad} and h's as {@code grad} times a transposed view: at rank 8 and
 * 1024 rows, MKL runs those 2-3.5x and 1.4-2x as fast as the {@code grad^T · h} and {@code grad ·
 * B} that a product with {@code B^T} as a transposed view gets (measured on this machine's libtorch
 * 2.7.1 for widths 576 to 3072).
 *
 * <p>{@code y} must be a fresh output that autograd did not save (a projection's result): the sum
 * is written into it. It must not be a view either, or autograd would copy the whole gradient three
 * times to rebase it.
 */
final class LoraProducts implements AutoCloseable {
  static final String SOURCE =
      """
        def forward(self: __torch__.LoraProducts,
          y: Tensor) -> Tensor:
          return y
        def add_into(self: __torch__.LoraProducts,
          h: List[Tensor],
          bt: List[Tensor],
          y: Tensor) -> Tensor:
          rows = torch.size(y, 0)
          activations = torch.reshape(torch.cat(h, -1), [rows, -1])
          return torch.addmm_(y, activations, torch.block_diag(bt))
      """;

  private final ScriptedModule module;

  private LoraProducts(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the module on the manager's device; close it (or the manager) when done. */
  static LoraProducts compile(NDManager manager) {
    return new LoraProducts(ScriptedModule.compile(manager, "LoraProducts", SOURCE));
  }

  /**
   * Adds {@code cat(h) · block_diag(bt)} into {@code y (rows, out)} and returns it.
   *
   * @param h the members' scaled rank-r activations, each with {@code rows} rows in all (any
   *     leading shape), in member order; not empty
   * @param bt each member's {@code B^T (r, out_i)}, or a {@code (0, out_i)} array for a member
   *     without an adapter; arrays of the caller's own (they are renamed during the call)
   * @param y the base output, 2-D, a fresh array autograd did not save
   */
  NDArray addInto(List<NDArray> h, List<NDArray> bt, NDArray y) {
    return module.callWithLists("add_into", List.of(h, bt), y);
  }

  @Override
  public void close() {
    module.close();
  }
}
