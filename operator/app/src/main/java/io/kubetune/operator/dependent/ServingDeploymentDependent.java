package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.dependent.Matcher;
import io.javaoperatorsdk.operator.processing.dependent.kubernetes.CRUDNoGCKubernetesDependentResource;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.SecondaryToPrimaryMapper;
import io.javaoperatorsdk.operator.processing.event.source.informer.Mappers;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Names;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.serving.ServingOutcome;
import java.util.Objects;
import java.util.Optional;

/**
 * The serving Deployment: exactly the one {@link io.kubetune.operator.serving.ServingRollout}
 * decided and built in this reconcile (a {@link ServingOutcome.Workload.Run}). Rewritten only when
 * its spec hash differs; deleted when serving is turned off.
 */
public class ServingDeploymentDependent
    extends CRUDNoGCKubernetesDependentResource<Deployment, FineTuneJob> {
  public static final String NAME = "deployments";

  private final FineTuneJobMetrics metrics;

  public ServingDeploymentDependent(FineTuneJobMetrics metrics) {
    super(Deployment.class);
    this.metrics = metrics;
  }

  @Override
  protected InformerEventSourceConfiguration.Builder<Deployment> informerConfigurationBuilder(
      EventSourceContext<FineTuneJob> context) {
    return OwnedInformers.managed(super.informerConfigurationBuilder(context), NAME);
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

  /**
   * Deleted on purpose when serving is turned off, and garbage-collected with the FineTuneJob: the
   * builder's controller owner reference stays, and events map back through it.
   */
  @Override
  protected boolean addOwnerReference() {
    return true;
  }

  /** Which object this is, also when it is only to be deleted (serving turned off). */
  @Override
  protected ResourceID targetSecondaryResourceID(
      FineTuneJob primary, Context<FineTuneJob> context) {
    return new ResourceID(Names.servingDeployment(primary), primary.getMetadata().getNamespace());
  }

  /** Events map back by owner reference, as for the GC-owned dependents (not by annotations). */
  @Override
  protected Optional<SecondaryToPrimaryMapper<Deployment>> getSecondaryToPrimaryMapper(
      EventSourceContext<FineTuneJob> context) {
    return Optional.of(Mappers.fromOwnerReferences(FineTuneJob.class));
  }

  @Override
  protected void onCreated(FineTuneJob primary, Deployment created, Context<FineTuneJob> context) {
    super.onCreated(primary, created, context);
    metrics.childWritten("Deployment", "create");
  }

  @Override
  protected void onUpdated(
      FineTuneJob primary, Deployment updated, Deployment actual, Context<FineTuneJob> context) {
    super.onUpdated(primary, updated, actual, context);
    metrics.childWritten("Deployment", "update");
  }

  @Override
  protected void handleDelete(
      FineTuneJob primary, Deployment secondary, Context<FineTuneJob> context) {
    super.handleDelete(primary, secondary, context);
    metrics.childWritten("Deployment", "delete");
  }
}
