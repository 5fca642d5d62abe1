package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.kubetune.trainer.safetensors.Safetensors;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * AdamW (Loshchilov and Hutter) with decoupled weight decay. Moments are kept in name-keyed maps
 * (parameter name, e.g. {@code model.layers.0.self_attn.q_proj.weight}) so they can be written into
 * a checkpoint and restored.
 */
public final class AdamW implements AutoCloseable {
  public static final double BETA1 = 0.9;
  public static final double BETA2 = 0.999;
  public static final double EPSILON = 1e-8;

  private final NDManager manager;
  private final double weightDecay;
  private final Set<String> noDecay;
  private final Map<String, NDArray> firstMoment = new LinkedHashMap<>();
  private final Map<String, NDArray> secondMoment = new LinkedHashMap<>();
  private long step;
  private OptimizerKernels kernels;

  /**
   * @param noDecay names exempt from weight decay (norm weights and biases)
   */
  public AdamW(NDManager parent, double weightDecay, Set<String> noDecay) {
    this.manager = parent.newSubManager();
    this.weightDecay = weightDecay;
    this.noDecay = Set.copyOf(noDecay);
  }

  /** True for the parameters AdamW must not decay: RMSNorm/LayerNorm weights and biases. */
  public static boolean exemptFromDecay(String name) {
    return name.endsWith("norm.weight") || name.endsWith(".bias");
  }

  public long step() {
    return step;
  }

  public Map<String, NDArray> firstMoment() {
    return firstMoment;
  }

  public Map<String, NDArray> secondMoment() {
    return secondMoment;
  }

  /**
   * Restores the state of a checkpoint: the step count (for the bias corrections) and the moments,
   * created in this optimizer's manager like the ones {@link #update} creates.
   */
  public void restore(
      long restoredStep,
      Map<String, Safetensors.FloatTensor> first,
      Map<String, Safetensors.FloatTensor> second) {
    step = restoredStep;
    first.forEach(
        (name, t) -> firstMoment.put(name, manager.create(t.data(), new Shape(t.shape()))));
    second.forEach(
        (name, t) -> secondMoment.put(name, manager.create(t.data(), new Shape(t.shape()))));
  }

  /**
   * One update. {@code gradients} are already clipped/scaled; the caller scopes temporaries with
   * {@code scope}.
   */
  public void update(
      Map<String, NDArray> parameters,
      Map<String, NDArray> gradients,
      double learningRate,
      NDManager scope) {
    update(parameters, gradients, learningRate, 1.0, scope);
  }

  /**
   * One update after multiplying every gradient, in place, by {@code gradientScale} (the clipping
   * factor, or 1).
   */
  public void update(
      Map<String, NDArray> parameters,
      Map<String, NDArray> gradients,
      double learningRate,
      double gradientScale,
      NDManager scope) {
    step++;
    if (parameters.isEmpty()) {
      return;
    }
    List<NDArray> params = new ArrayList<>(parameters.size());
    List<NDArray> grads = new ArrayList<>(parameters.size());
    List<NDArray> firsts = new ArrayList<>(parameters.size());
    List<NDArray> seconds = new ArrayList<>(parameters.size());
    boolean[] decayed = new boolean[parameters.size()];
    for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
      String name = e.getKey();
      NDArray param = e.getValue();
      decayed[params.size()] = weightDecay > 0 && !noDecay.contains(name);
      params.add(param);
      grads.add(gradients.get(name));
      firsts.add(firstMoment.computeIfAbsent(name, n -> manager.zeros(param.getShape())));
      seconds.add(secondMoment.computeIfAbsent(name, n -> manager.zeros(param.getShape())));
    }
    kernels()
        .adamw(
            params,
            grads,
            firsts,
            seconds,
            decayed,
            gradientScale,
            learningRate,
            1 - Math.pow(BETA1, step),
            1 - Math.pow(BETA2, step),
            1 - learningRate * weightDecay,
            scope);
  }

  /** The optimizer's compiled kernels (also the gradient norm and zeroing), made on first use. */
  OptimizerKernels kernels() {
    if (kernels == null) {
      kernels = OptimizerKernels.compile(manager);
    }
    return kernels;
  }

  @Override
  public void close() {
    manager.close();
  }
}
