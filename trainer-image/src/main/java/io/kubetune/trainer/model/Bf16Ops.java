package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * bf16 tensors through DJL 0.36's PyTorch engine, which cannot name the type itself.
 *
 * <p>DJL passes a dtype to libtorch as {@code DataType.ordinal()}; its native mapping ({@code
 * GetScalarTypeFromDType} in {@code djl_pytorch_utils.h}) knows ordinals 0-8 only and answers any
 * other, {@code BFLOAT16} (11) included, with a bare {@code throw;} outside a handler, which is
 * {@code std::terminate}: the JVM aborts. Tensors that are already bf16 work with every DJL op that
 * takes no dtype (matMul, linear, add, transpose, ...), so the only missing piece is the cast. This
 * class gets it from a tiny TorchScript module ({@link ScriptedModule}).
 *
 * <p>The casts run with autograd recording (DJL's own {@code toType} runs under {@code
 * NoGradGuard}, so it cuts the graph): gradients flow through them to fp32 tensors on either side.
 * DJL reports a bf16 array's {@code getDataType()} as {@code UNKNOWN}; never pass one to a DJL call
 * that forwards its dtype (zeros/onesLike, softmax, toFloatArray), which aborts or throws.
 */
public final class Bf16Ops implements AutoCloseable {
  /** The module's methods, as {@code torch.jit.save} writes them. ScalarType 15: bf16, 6: fp32. */
  static final String SOURCE =
      """
        def forward(self: __torch__.Bf16Ops,
          x: Tensor) -> Tensor:
          return torch.to(x, 15)
        def to_float32(self: __torch__.Bf16Ops,
          x: Tensor) -> Tensor:
          return torch.to(x, 6)
        def linear(self: __torch__.Bf16Ops,
          x: Tensor,
          weight: Tensor) -> Tensor:
          return torch.to(torch.linear(torch.to(x, 15), weight), 6)
        def matmul(self: __torch__.Bf16Ops,
          x: Tensor,
          other: Tensor) -> Tensor:
          return torch.to(torch.matmul(torch.to(x, 15), other), 6)
      """;

  private final ScriptedModule module;

  private Bf16Ops(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the module on the manager's device; close it (or the manager) when done. */
  public static Bf16Ops load(NDManager manager) {
    return new Bf16Ops(ScriptedModule.compile(manager, "Bf16Ops", SOURCE));
  }

  /** x cast to bf16 (round to nearest even), differentiable. */
  public NDArray toBf16(NDArray x) {
    return run(null, x);
  }

  /** x cast to fp32 (exact from bf16), differentiable. */
  public NDArray toFloat32(NDArray x) {
    return run("to_float32", x);
  }

  /**
   * fp32 {@code x (..., in)} times bf16 {@code weight (out, in)} transposed, as fp32 {@code (...,
   * out)}: x is rounded to bf16, the product accumulates in fp32 inside the GEMM and is rounded to
   * bf16, as under torch.autocast. One native call; differentiable with respect to x.
   */
  public NDArray linear(NDArray x, NDArray weight) {
    return run("linear", x, weight);
  }

  /**
   * fp32 {@code x (..., k)} times bf16 {@code other (k, n)} as fp32 {@code (..., n)}, rounded like
   * {@link #linear}; differentiable with respect to x.
   */
  public NDArray matMul(NDArray x, NDArray other) {
    return run("matmul", x, other);
  }

  private NDArray run(String method, NDArray... inputs) {
    return module.call(method, inputs);
  }

  @Override
  public void close() {
    module.close();
  }
}
