package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.kubetune.trainer.safetensors.Safetensors;
import java.util.LinkedHashMap;
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
   * {@code scope}, to which parameters, gradients and moments are temporarily attached.
   */
  public void update(
      Map<String, NDArray> parameters,
      Map<String, NDArray> gradients,
      double learningRate,
      NDManager scope) {
    step++;
    double correction1 = 1 - Math.pow(BETA1, step);
    double correction2 = 1 - Math.pow(BETA2, step);
    for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
      String name = e.getKey();
      NDArray param = e.getValue();
      NDArray grad = gradients.get(name);
      NDArray m = firstMoment.computeIfAbsent(name, n -> manager.zeros(param.getShape()));
      NDArray v = secondMoment.computeIfAbsent(name, n -> manager.zeros(param.getShape()));
      scope.tempAttachAll(m, v);
      // Every temporary is as large as the parameter and closed as soon as it is used: left to
      // the step's scope they would add up to several times the model's size (22.9 GB of peak
      // RSS for full fine-tuning at the Qwen2.5-0.5B shape, against 10.7 GB for the peer).
      try (NDArray scaledGrad = grad.mul((float) (1 - BETA1))) {
        m.muli((float) BETA1).addi(scaledGrad);
      }
      try (NDArray squaredGrad = grad.square()) {
        v.muli((float) BETA2).addi(squaredGrad.muli((float) (1 - BETA2)));
      }
      if (weightDecay > 0 && !noDecay.contains(name)) {
        param.muli((float) (1 - learningRate * weightDecay));
      }
      try (NDArray correctedV = v.div((float) correction2);
          NDArray denominator = correctedV.sqrt();
          NDArray update = m.div((float) correction1)) {
        denominator.addi((float) EPSILON);
        param.subi(update.divi(denominator).muli((float) learningRate));
      }
    }
  }

  @Override
  public void close() {
    manager.close();
  }
}
