package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.Locale;

/**
 * LoRA dropout drawn fast and applied without a masked copy of the input, as a {@link
 * ScriptedModule}.
 *
 * <p>libtorch's dropout draws a Bernoulli variable per element with a serial kernel on the CPU,
 * then builds a float mask, rescales it and multiplies: half a second of a 1.6 s LoRA step at the
 * 18M benchmark shape, more at larger ones. Here only the rarer outcome is drawn: the positions of
 * the dropped elements (of the kept ones when p > 0.5) are the running sums of geometric gaps,
 * which is exactly how the successes of independent Bernoulli(p) trials are spaced. That is n·p
 * draws instead of n, about 20x fewer at the usual p = 0.05. The dropout is then applied to the
 * adapters' down-projections by position (see {@link #downProjections}): no float mask is built.
 * With KubeTune's native operator ({@code kubetune::dropout_down_projections}) no masked copy of
 * the input is made either; it draws the gaps itself, in blocks of 64 rows of one member, each from
 * its own Philox stream seeded by one draw from libtorch's default generator, on libtorch's
 * threads, and autograd keeps 4 bytes per drawn position besides x and the A's, which the undropped
 * product keeps anyway. Without it (other platforms, GPUs) the gaps come from libtorch's {@code
 * geometric_} and each member zeroes its dropped elements in a copy of x ({@code index_fill} by
 * position), which autograd keeps. Either way the draws come from the engine's default generator
 * and their number depends only on the draws themselves, so reseeding the generator reproduces the
 * masks (resume and recomputation rely on that); on CUDA they come from its Philox generator.
 *
 * <p>Kept elements are not rescaled by 1/(1-p): the caller folds that factor into the adapter's
 * scaling, which multiplies the rank-r activations, a much smaller array.
 */
final class LoraKernels implements AutoCloseable {
  private final ScriptedModule module;
  private final boolean nativeKernel;

  private LoraKernels(ScriptedModule module, boolean nativeKernel) {
    this.module = module;
    this.nativeKernel = nativeKernel;
  }

  /**
   * Compiles the kernels for dropout probability {@code p} (0 < p < 1) on the manager's device:
   * with KubeTune's native operator on a CPU where {@link NativeKernels} loaded it, else with
   * libtorch's ops alone.
   */
  static LoraKernels compile(NDManager manager, double p) {
    boolean nativeKernel =
        ai.djl.Device.Type.CPU.equals(manager.getDevice().getDeviceType())
            && NativeKernels.status().loaded();
    return compile(manager, p, 6.0, nativeKernel);
  }

  /**
   * With gaps drawn for {@code marginSigmas} standard deviations above the expected count, and the
   * native operator or not (it needs {@link NativeKernels} loaded and a CPU device).
   */
  static LoraKernels compile(
      NDManager manager, double p, double marginSigmas, boolean nativeKernel) {
    return new LoraKernels(
        ScriptedModule.compile(manager, "LoraKernels", source(p, marginSigmas, nativeKernel)),
        nativeKernel);
  }

  /** Whether the dropped elements go through KubeTune's native operator. */
  boolean nativeKernel() {
    return nativeKernel;
  }

  /**
   * The scaled rank-r activations of adapters that read the same input through LoRA dropout, side
   * by side: member i's block is {@code (dropout_i(x) · A_i^T) · scaling}, each member with its own
   * mask, as PEFT draws one per adapted module. Of shape (rows, members · r); differentiable with
   * respect to x and the A's.
   *
   * <p>With the native operator no masked copy of x is made. With p ≤ 0.5 the dropped elements are
   * the rare ones, so the result is the undropped product for all members at once, {@code x ·
   * cat(A)^T} (the product the no-dropout path runs), minus what the dropped elements contributed:
   * for a dropped {@code x[row, col]} of member i, {@code x[row, col] · A_i[:, col]} is taken off
   * row {@code row} of member i's block (about p · members · rows · in products of length r,
   * forward and backward, in one operator with the dense products). With p > 0.5 the kept elements
   * are the rare ones and their contributions are the whole result. Without it, each member
   * multiplies a copy of x with its dropped elements zeroed ({@code index_fill} by position). Both
   * are the same function, summed in a different order: they round differently in the last bits,
   * and they draw their masks differently, so the same seed gives different masks on the two paths.
   * On each path the masks depend only on the seed and on the shapes (members, rows, in), not on r
   * or the thread count.
   *
   * <p>x may be bf16 (the adapters of a bf16 model): the dense products then take bf16 copies of
   * the A's, as under autocast; the activations and the A's gradients stay fp32, x's gradient is
   * bf16.
   *
   * @param x (rows, in)
   * @param a each member's {@code A (r, in)}, all of the same rank r, in member order; arrays of
   *     the caller's own (they are renamed during the call); not empty
   * @param scaling scalar, or (members · r) with each member's scaling repeated r times, already
   *     multiplied by 1/(1-p) (kept elements are not rescaled); it must outlive the backward pass
   */
  NDArray downProjections(NDArray x, List<NDArray> a, NDArray scaling) {
    return module.callWithLists("down_projections", List.of(a), x, scaling);
  }

  /**
   * The module's source for dropout probability p. {@code rare} is the probability of the rarer
   * outcome. Without the native operator, {@code m} gaps cover n elements but for a shortfall of
   * {@code marginSigmas} standard deviations (6 in use), which the loop tops up, and a gap is
   * clamped to n + 1 so that an infinite one (a uniform draw of exactly 0, probability 2^-53) means
   * "none in this tensor" instead of an overflow; the native operator draws until its block is
   * covered and needs neither.
   */
  static String source(double p, double marginSigmas, boolean nativeKernel) {
    if (!(p > 0 && p < 1)) {
      throw new IllegalArgumentException("dropout probability must be in (0, 1), got " + p);
    }
    boolean dropsAreRarer = p <= 0.5;
    double rare = dropsAreRarer ? p : 1 - p;
    String downProjections;
    if (nativeKernel) {
      downProjections =
          String.format(
              Locale.ROOT,
              """
                def down_projections(self: __torch__.LoraKernels,
                  a: List[Tensor],
                  x: Tensor,
                  scaling: Tensor) -> Tensor:
                  stacked = torch.cat(a, 0)
                  return torch.mul(
                    ops.kubetune.dropout_down_projections(x, stacked, len(a), %s, %s), scaling)
              """,
              Double.toString(rare),
              dropsAreRarer ? "True" : "False");
    } else {
      downProjections =
          """
            def down_projections(self: __torch__.LoraKernels,
              a: List[Tensor],
              x: Tensor,
              scaling: Tensor) -> Tensor:
              n = torch.numel(x)
              flat = torch.reshape(x, [-1])
              products = annotate(List[Tensor], [])
              for member in a:
                positions = (self).rare_positions(n, ops.prim.device(x))
                %s
                product = torch.linear(torch.view(masked, torch.size(x)),
                  torch.to(member, ops.prim.dtype(x)), None)
                products.append(torch.to(product, 6))
              return torch.mul(torch.cat(products, -1), scaling)
          """
              .formatted(
                  dropsAreRarer
                      ? "masked = torch.index_fill(flat, 0, positions, 0.)"
                      : "masked = torch.index_copy(torch.zeros_like(flat), 0, positions,"
                          + " torch.index_select(flat, 0, positions))");
    }
    return String.format(
            Locale.ROOT,
            """
              def forward(self: __torch__.LoraKernels,
                x: Tensor) -> Tensor:
                return x
              def gaps(self: __torch__.LoraKernels,
                m: int,
                n: int,
                device: Device) -> Tensor:
                drawn = torch.empty([m], dtype=4, layout=None, device=device, pin_memory=None)
                return torch.clamp(torch.geometric_(drawn, %1$s), 1, torch.add(n, 1))
              def rare_positions(self: __torch__.LoraKernels,
                n: int,
                device: Device) -> Tensor:
                expected = float(n) * %1$s
                m = int(expected + %2$s * torch.sqrt(expected * (1.0 - %1$s)) + 16.0)
                positions = torch.sub(torch.cumsum((self).gaps(m, n, device), 0), 1)
                last = int(torch.item(torch.select(positions, 0, -1)))
                while last < n - 1:
                  more = torch.add(torch.cumsum((self).gaps(m, n, device), 0), last)
                  positions = torch.cat([positions, more])
                  last = int(torch.item(torch.select(positions, 0, -1)))
                count = int(torch.item(torch.sum(torch.lt(positions, n))))
                return torch.narrow(positions, 0, 0, count)
            """,
            Double.toString(rare),
            Double.toString(marginSigmas))
        + downProjections;
  }

  @Override
  public void close() {
    module.close();
  }
}
