package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.processing.dependent.Matcher;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Names;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.serving.ServingOutcome;
import java.util.Objects;

/**
 * The serving Deployment: exactly the one {@link io.kubetune.operator.serving.ServingRollout}
 * decided and built in this reconcile (a {@link ServingOutcome.Workload.Run}). Rewritten only when
 * its spec hash differs; deleted when serving is turned off.
 */
public class ServingDeploymentDependent extends ServingDependent<Deployment> {
  public static final String NAME = "deployments";

  public ServingDeploymentDependent(FineTuneJobMetrics metrics) {
    super(Deployment.class, NAME, Names::servingDeployment, metrics);
  }

  @Override
  protected Deployment desired(FineTuneJob primary, Context<FineTuneJob> context) {
    if (Desired.serving(context).workload() instanceof ServingOutcome.Workload.Run run) {
      return run.deployment();
    }
    throw new IllegalStateException("the serving Deployment is reconciled only to run an adapter");
  }

  @Override
  public Matcher.Result<Deployment> match(
      Deployment actual, Deployment desired, FineTuneJob primary, Context<FineTuneJob> context) {
    return Matcher.Result.computed(
        Objects.equals(ServingModel.hashOf(actual), ServingModel.hashOf(desired)), desired);
  }
}
