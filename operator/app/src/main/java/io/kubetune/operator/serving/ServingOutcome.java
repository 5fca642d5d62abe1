package io.kubetune.operator.serving;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.kubetune.api.v1alpha1.ServingStatus;
import io.kubetune.operator.model.ServingModel.Adapter;
import java.time.Duration;

/**
 * What {@link ServingRollout} decided in one reconcile: the serving facts the status aggregator
 * folds into status (it is the only writer of status), the serving workload the children must
 * match, and when to look again. Pure data: nothing here has been applied yet.
 *
 * @param serving status.serving as it should read; null when serving is off
 * @param servingCondition the Serving condition; null removes it (serving off)
 * @param ready the Ready condition; null leaves Ready to the training outcome (serving off)
 * @param servingMessage non-null when a model is served: phase becomes Serving with this message
 * @param workload what the serving Deployment and Service must run
 * @param requeueAfter when to look again (a rollout in flight), or null
 */
public record ServingOutcome(
    ServingStatus serving,
    Verdict servingCondition,
    Verdict ready,
    String servingMessage,
    Workload workload,
    Duration requeueAfter) {

  /** A condition's value as decided: status, CamelCase reason and message. */
  public record Verdict(boolean value, String reason, String message) {}

  /**
   * The serving children as decided. A canary is part of a {@link Run}'s Deployment (the same pods
   * serve both adapters, {@code ServingModel.canaryOf}), so it changes neither the workload kinds
   * nor how status is folded.
   */
  public sealed interface Workload permits Workload.Off, Workload.Unchanged, Workload.Run {
    /** Serving is disabled: the Deployment and Service are removed. */
    record Off() implements Workload {}

    /**
     * Nothing is decided to run (nothing promoted yet, or a rollout's intent was just recorded and
     * no Deployment exists): leave the serving objects as they are.
     */
    record Unchanged() implements Workload {}

    /**
     * The Deployment runs {@code adapter} (its desired state, built once in this reconcile) behind
     * the Service.
     */
    record Run(Adapter adapter, Deployment deployment) implements Workload {}
  }

  /** Serving is off: no serving status, no Serving condition, children removed. */
  static ServingOutcome off() {
    return new ServingOutcome(null, null, null, null, new Workload.Off(), null);
  }

  /** The adapter the serving Deployment must run, or null when it is not to be written. */
  public Adapter deploymentAdapter() {
    return workload instanceof Workload.Run run ? run.adapter() : null;
  }

  /** True when the serving Deployment and Service must go. */
  public boolean deleteServing() {
    return workload instanceof Workload.Off;
  }
}
