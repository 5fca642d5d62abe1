package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;

/**
 * The decoder layer's libtorch ops that DJL 0.36 does not expose, or exposes only as several calls,
 * in one {@link ScriptedModule}: causal attention, the gated activation, RMSNorm and the adapters'
 * up-projections. Each method is differentiable with respect to its tensor arguments, so autograd
 * records it like any DJL op.
 */
final class LayerKernels implements AutoCloseable {
  static final String SOURCE =
      """
        def forward(self: __torch__.LayerKernels,
          x: Tensor) -> Tensor:
          return x
        def causal_attention(self: __torch__.LayerKernels,
          q: Tensor,
          k: Tensor,
          v: Tensor) -> Tensor:
          return torch.scaled_dot_product_attention(q, k, v, None, 0., True)
        def swiglu(self: __torch__.LayerKernels,
          gate: Tensor,
          up: Tensor) -> Tensor:
          return torch.mul(torch.silu(gate), up)
        def down_projections(self: __torch__.LayerKernels,
          a: List[Tensor],
          x: Tensor,
          scaling: Tensor) -> Tensor:
          stacked = torch.to(torch.cat(a, 0), ops.prim.dtype(x))
          return torch.mul(torch.to(torch.linear(x, stacked, None), 6), scaling)
        def add_up_projections(self: __torch__.LayerKernels,
          h: List[Tensor],
          bt: List[Tensor],
          y: Tensor) -> Tensor:
          rows = torch.size(y, 0)
          activations = torch.reshape(torch.cat(h, -1), [rows, -1])
          dtype = ops.prim.dtype(y)
          return torch.addmm_(y, torch.to(activations, dtype), torch.to(torch.block_diag(bt), dtype))
      """;

  /** {@link #swiGluPacked}, {@link #rmsNorm} and {@link #rotary} through KubeTune's operators. */
  static final String NATIVE =
      """
        def swiglu_packed(self: __torch__.LayerKernels,
          gate_up: Tensor) -> Tensor:
          return ops.kubetune.swiglu_packed(gate_up)
        def rms_norm(self: __torch__.LayerKernels,
          x: Tensor,
          weight: Tensor,
          eps: Tensor) -> Tensor:
          return ops.kubetune.rms_norm(x, weight, eps)
        def rotary(self: __torch__.LayerKernels,
          x: Tensor,
          cos: Tensor,
          sin: Tensor) -> Tensor:
          return ops.kubetune.rotary(x, cos, sin)
      """;

  /** {@link #swiGluPacked}, {@link #rmsNorm} and {@link #rotary} with libtorch's ops. */
  static final String LIBTORCH =
      """
        def swiglu_packed(self: __torch__.LayerKernels,
          gate_up: Tensor) -> Tensor:
          halves = torch.chunk(torch.to(gate_up, 6), 2, -1)
          return torch.to(torch.mul(torch.silu(halves[0]), halves[1]), ops.prim.dtype(gate_up))
        def rms_norm(self: __torch__.LayerKernels,
          x: Tensor,
          weight: Tensor,
          eps: Tensor) -> Tensor:
          variance = torch.mean(torch.pow(x, 2), [-1], True)
          return torch.mul(torch.mul(x, torch.rsqrt(torch.add(variance, eps))), weight)
        def rotary(self: __torch__.LayerKernels,
          x: Tensor,
          cos: Tensor,
          sin: Tensor) -> Tensor:
          halves = torch.chunk(x, 2, -1)
          rotated = torch.cat([torch.neg(halves[1]), halves[0]], -1)
          return torch.add(torch.mul(x, cos), torch.mul(rotated, sin))
      """;

  private final ScriptedModule module;

  private LayerKernels(ScriptedModule module) {
    this.module = module;
  }

  /**
   * Compiles the module on the manager's device, with KubeTune's native operators on a CPU where
   * {@link NativeKernels} loaded them; close it (or the manager) when done.
   */
  static LayerKernels compile(NDManager manager) {
    boolean nativeKernels =
        ai.djl.Device.Type.CPU.equals(manager.getDevice().getDeviceType())
            && NativeKernels.status().loaded();
    return compile(manager, nativeKernels);
  }

  /** As {@link #compile(NDManager)}, with the native operators or not. */
  static LayerKernels compile(NDManager manager, boolean nativeKernels) {
    String source = SOURCE + (nativeKernels ? NATIVE : LIBTORCH);
    return new LayerKernels(ScriptedModule.compile(manager, "LayerKernels", source));
  }

  /**
   * softmax(q k^T / sqrt(d) + causal mask) v for q, k, v of shape (batch, heads, seq, head_dim),
   * with as many key/value heads as query heads.
   *
   * <p>One libtorch call, {@code scaled_dot_product_attention}. On the CPU libtorch runs its fused
   * flash-attention kernel for it, forward and backward: blocks of the (seq, seq) scores live only
   * inside the kernel, where the separate ops materialise the scores, their softmax and both
   * gradients for every head. The scale is libtorch's default, 1/sqrt(head_dim), the same as the
   * model's.
   */
  NDArray causalAttention(NDArray q, NDArray k, NDArray v) {
    return module.call("causal_attention", q, k, v);
  }

  /**
   * The MLP's gated activation, {@code silu(gate) * up}, elementwise.
   *
   * <p>With libtorch's fused SiLU (DJL 0.36 has no SiLU). Written with DJL's ops as {@code gate *
   * sigmoid(gate) * up} it takes three full-width passes forward and five backward (sigmoid, two
   * products, and the product rule's three); the fused kernel takes one forward and one backward
   * for the SiLU, as the peer's {@code F.silu} does. Same function; the kernel rounds differently
   * in the last bit.
   */
  NDArray swiGlu(NDArray gate, NDArray up) {
    return module.call("swiglu", gate, up);
  }

  /**
   * {@link #swiGlu} of the fused gate/up projection's output {@code (..., 2 · intermediate)}, gate
   * first, as {@code (..., intermediate)}.
   *
   * <p>With KubeTune's native operator ({@code kubetune::swiglu_packed}) forward and backward are
   * one pass each over the packed array, and the backward writes the packed gradient that the fused
   * projection's backward reads. With libtorch's ops the halves are views: silu and a product
   * forward; backward two products, silu_backward, and autograd's concatenation of the halves'
   * gradients. Same formulas in the same order as libtorch's kernels.
   *
   * <p>gateUp may be bf16 (a bf16 model's product output); the result is then bf16 too, computed in
   * float and rounded once, forward and backward (libtorch's ops widen, compute and cast back).
   */
  NDArray swiGluPacked(NDArray gateUp) {
    return module.call("swiglu_packed", gateUp);
  }

  /**
   * RMSNorm over the last axis, {@code x · rsqrt(mean(x²) + eps) · weight}.
   *
   * <p>Written as transformers' {@code LlamaRMSNorm} writes it: a multiply by the reciprocal square
   * root instead of a division by the square root, whose backward pass takes two more full-width
   * passes (the quotient rule). The reciprocal rounds differently from the quotient in the last
   * bit; it is the reference's formula. With KubeTune's native operator ({@code
   * kubetune::rms_norm}) forward and backward are one pass each and autograd keeps x and one float
   * per row; with libtorch's ops, one call of six ops that keeps the normalized x as well. The
   * native mean sums in another order: last-bit differences.
   *
   * @param eps a scalar array that outlives the backward pass (see {@link LlamaModel#scalar})
   */
  NDArray rmsNorm(NDArray x, NDArray weight, NDArray eps) {
    return module.call("rms_norm", x, weight, eps);
  }

  /**
   * Rotary position embedding of q or k, {@code x · cos + rotate_half(x) · sin} with {@code
   * rotate_half(x) = cat(-x2, x1)}, as transformers writes it.
   *
   * <p>With KubeTune's native operator ({@code kubetune::rotary}) forward and backward are one pass
   * each, reading x through its strides (the projection's output seen per head) and writing the
   * contiguous array attention wants; with libtorch's ops, five full-size results each way. The
   * native operator may fuse a product and a sum (FMA): last-bit differences.
   *
   * @param x (batch, heads, seq, head_dim), float32
   * @param cos the cosine table, (1, 1, seq, head_dim)
   * @param sin the sine table, same shape
   */
  NDArray rotary(NDArray x, NDArray cos, NDArray sin) {
    return module.call("rotary", x, cos, sin);
  }

  /**
   * The scaled rank-r activations of adapters that read the same input, side by side: {@code (x ·
   * cat(A)^T) · scaling}, of shape (..., r_1 + ... + r_n).
   *
   * <p>Without dropout (evaluation, serving, or training with dropout 0) the members of a fused
   * group (q/k/v, gate/up) all read x, so one product with their stacked A's reads x once instead
   * of once per member, forward and for A's gradient, and autograd adds one input gradient into x's
   * instead of one per member. With dropout each member reads its own masked copy of x, and this is
   * called once per member. The stacked A is row-major {@code (r, in)} as PEFT stores it, so A's
   * gradient is computed as {@code grad^T · x}, the orientation MKL runs fast at rank 8.
   *
   * <p>x may be bf16 (the adapters of a bf16 model): the product then takes bf16 copies of the A's
   * (fp32 accumulation inside the GEMM) and the result is widened to fp32, as the A's are.
   *
   * @param a each member's {@code A (r_i, in)}, in member order; arrays of the caller's own (they
   *     are renamed during the call); not empty
   * @param scaling a scalar when the members share one scaling, else (r_1 + ... + r_n) with each
   *     member's scaling repeated r_i times; it must outlive the backward pass (see {@link
   *     LlamaModel#scalar})
   */
  NDArray downProjections(NDArray x, List<NDArray> a, NDArray scaling) {
    return module.callWithLists("down_projections", List.of(a), x, scaling);
  }

  /**
   * Adds the adapters' up-projections of projections that share an input into their base output, in
   * place with one GEMM: {@code y += cat(h) · block_diag(bt)}, returned.
   *
   * <p>For a fused group (q/k/v, gate/up), {@code y (rows, out_1 + ... + out_n)} is the base output
   * and {@code h_i (rows, r_i)} the scaled rank-r activations of member i; the members' {@code
   * B_i^T (r_i, out_i)} form a block-diagonal matrix, so each member's {@code h_i B_i^T} lands in
   * its own columns and exact zeros elsewhere. A member without an adapter has a block of zero
   * rows. Done this way instead of one product and one add per member, it saves, per member, a
   * full-width output array and the pass that adds it. And the {@code block_diag} copy of the B's
   * is row-major, which makes libtorch compute B's gradient as {@code h^T · grad} and h's as {@code
   * grad} times a transposed view: at rank 8 and 1024 rows, MKL runs those 2-3.5x and 1.4-2x as
   * fast as the {@code grad^T · h} and {@code grad · B} that a product with {@code B^T} as a
   * transposed view gets (measured on this machine's libtorch 2.7.1 for widths 576 to 3072).
   *
   * <p>A bf16 y (a bf16 model's base output) gets the product of bf16 copies of the activations and
   * B's, accumulated in fp32 inside the GEMM and rounded to bf16 once, as under autocast.
   *
   * @param h the members' scaled rank-r activations, each with {@code rows} rows in all (any
   *     leading shape), in member order; not empty
   * @param bt each member's {@code B^T (r, out_i)}, or a {@code (0, out_i)} array for a member
   *     without an adapter; arrays of the caller's own (they are renamed during the call)
   * @param y the base output (rows, out): a fresh array autograd did not save (a projection's
   *     result), written into; not a view either, or autograd would copy the whole gradient three
   *     times to rebase it
   */
  NDArray addUpProjections(List<NDArray> h, List<NDArray> bt, NDArray y) {
    return module.callWithLists("add_up_projections", List.of(h, bt), y);
  }

  @Override
  public void close() {
    module.close();
  }
}
