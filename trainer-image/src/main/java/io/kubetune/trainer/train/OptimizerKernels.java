package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.kubetune.trainer.model.ScriptedModule;
import java.util.List;
import java.util.Locale;

/**
 * The optimizer's per-array arithmetic as one libtorch call per step and phase (a {@link
 * ScriptedModule}), instead of about twenty DJL calls per trained array. A LoRA run trains hundreds
 * of small arrays (420 at SmolLM2-135M), so each step paid thousands of JNI round trips for a few
 * microseconds of arithmetic each: 26 ms of a 1.0 s step at the 18M shape (13 ms now), where the
 * peer's AdamW and clipping take 5-8. The ops, their order and their float32 rounding are those of
 * the per-array code they replace; the loops run in libtorch's interpreter, which drops each
 * temporary when its last use has passed, so full fine-tuning still holds one array's temporaries
 * at a time.
 */
final class OptimizerKernels implements AutoCloseable {
  private final ScriptedModule module;

  private OptimizerKernels(ScriptedModule module) {
    this.module = module;
  }

  /** Compiles the kernels for AdamW's constants on the manager's device. */
  static OptimizerKernels compile(NDManager manager) {
    return new OptimizerKernels(ScriptedModule.compile(manager, "OptimizerKernels", source()));
  }

  /** The float32 sum of squares of each array (the squared global norm is their sum). */
  float[] sumsOfSquares(List<NDArray> arrays) {
    try (NDArray sums = module.callWithLists("squares", List.of(arrays))) {
      return sums.toFloatArray();
    }
  }

  /**
   * One AdamW step over parallel lists, in place: each gradient is first multiplied by {@code
   * gradientScale} (when not 1), each parameter whose {@code decayed} flag is set is multiplied by
   * {@code decayFactor}, then the moments and the parameter are updated.
   */
  void adamw(
      List<NDArray> parameters,
      List<NDArray> gradients,
      List<NDArray> firstMoments,
      List<NDArray> secondMoments,
      boolean[] decayed,
      double gradientScale,
      double learningRate,
      double correction1,
      double correction2,
      double decayFactor,
      NDManager scope) {
    NDArray flags = scope.create(decayed);
    NDArray hyper =
        scope.create(
            new double[] {gradientScale, learningRate, correction1, correction2, decayFactor});
    module
        .callWithLists(
            "adamw", List.of(parameters, gradients, firstMoments, secondMoments), flags, hyper)
        .close();
  }

  /** Sets every array to zero, in place. */
  void zero(List<NDArray> arrays) {
    module.callWithLists("zero", List.of(arrays)).close();
  }

  /** The module's source, with AdamW's constants written in. */
  static String source() {
    return String.format(
        Locale.ROOT,
        """
          def forward(self: __torch__.OptimizerKernels,
            x: Tensor) -> Tensor:
            return x
          def squares(self: __torch__.OptimizerKernels,
            arrays: List[Tensor]) -> Tensor:
            out = annotate(List[Tensor], [])
            for i in range(torch.len(arrays)):
              _0 = torch.append(out, torch.sum(torch.square(arrays[i])))
            return torch.stack(out)
          def zero(self: __torch__.OptimizerKernels,
            arrays: List[Tensor]) -> Tensor:
            for i in range(torch.len(arrays)):
              _0 = torch.zero_(arrays[i])
            return torch.zeros([1], dtype=None, layout=None, device=None, pin_memory=None)
          def adamw(self: __torch__.OptimizerKernels,
            params: List[Tensor],
            grads: List[Tensor],
            firsts: List[Tensor],
            seconds: List[Tensor],
            decayed: Tensor,
            hyper: Tensor) -> Tensor:
            scale = float(torch.item(torch.select(hyper, 0, 0)))
            lr = float(torch.item(torch.select(hyper, 0, 1)))
            correction1 = float(torch.item(torch.select(hyper, 0, 2)))
            correction2 = float(torch.item(torch.select(hyper, 0, 3)))
            decay = float(torch.item(torch.select(hyper, 0, 4)))
            for i in range(torch.len(params)):
              p = params[i]
              g = grads[i]
              m = firsts[i]
              v = seconds[i]
              if torch.ne(scale, 1.):
                _0 = torch.mul_(g, scale)
              _1 = torch.add_(torch.mul_(m, %1$s), torch.mul(g, %2$s))
              _2 = torch.add_(torch.mul_(v, %3$s), torch.mul_(torch.square(g), %4$s))
              if bool(torch.item(torch.select(decayed, 0, i))):
                _3 = torch.mul_(p, decay)
              denominator = torch.add_(torch.sqrt(torch.div(v, correction2)), %5$s)
              step = torch.mul_(torch.div_(torch.div(m, correction1), denominator), lr)
              _4 = torch.sub_(p, step)
            return hyper
        """,
        Float.toString((float) AdamW.BETA1),
        Float.toString((float) (1 - AdamW.BETA1)),
        Float.toString((float) AdamW.BETA2),
        Float.toString((float) (1 - AdamW.BETA2)),
        Float.toString((float) AdamW.EPSILON));
  }

  @Override
  public void close() {
    module.close();
  }
}
