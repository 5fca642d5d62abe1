package io.kubetune.operator.dependent;

import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.serving.ServingOutcome;
import io.kubetune.operator.serving.ServingOutcome.Workload;

/**
 * The serving children as one unit: they follow the {@link ServingOutcome}'s workload. Active only
 * when serving is on (a {@link Workload.Run}); serving off ({@link Workload.Off}) deletes both;
 * nothing decided yet ({@link Workload.Unchanged}) leaves them as they are. A canary workload adds
 * its second Deployment here.
 */
public final class ServingDependents {
  private final ServingDeploymentDependent deployment;
  private final ServingServiceDependent service;

  public ServingDependents(FineTuneJobMetrics metrics) {
    this.deployment = new ServingDeploymentDependent(metrics);
    this.service = new ServingServiceDependent(metrics);
  }

  public ServingDeploymentDependent deployment() {
    return deployment;
  }

  public ServingServiceDependent service() {
    return service;
  }

  /** Makes the serving Deployment and Service match what serving decided. */
  public void reconcile(ServingOutcome outcome, FineTuneJob cr, Context<FineTuneJob> context) {
    Desired.serving(context, outcome);
    Workload workload = outcome.workload();
    if (workload instanceof Workload.Run) {
      deployment.reconcile(cr, context);
      service.reconcile(cr, context);
    } else if (workload instanceof Workload.Off) {
      deployment.delete(cr, context);
      service.delete(cr, context);
    }
  }
}
