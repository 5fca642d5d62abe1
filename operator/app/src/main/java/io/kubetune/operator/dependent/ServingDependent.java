package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.dependent.kubernetes.CRUDNoGCKubernetesDependentResource;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.SecondaryToPrimaryMapper;
import io.javaoperatorsdk.operator.processing.event.source.informer.Mappers;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import java.util.Optional;
import java.util.function.Function;

/**
 * A serving child: deleted on purpose when serving is turned off (so not JOSDK's GC-only kind), yet
 * owned like the others: the builder's controller owner reference stays, the informer sees only
 * objects this operator labelled, and events map back by owner reference (not by annotations).
 * Writes are counted per kind.
 */
abstract class ServingDependent<R extends HasMetadata>
    extends CRUDNoGCKubernetesDependentResource<R, FineTuneJob> {
  private final String informerName;
  private final Function<FineTuneJob, String> name;
  private final FineTuneJobMetrics metrics;

  ServingDependent(
      Class<R> type,
      String informerName,
      Function<FineTuneJob, String> name,
      FineTuneJobMetrics metrics) {
    super(type);
    this.informerName = informerName;
    this.name = name;
    this.metrics = metrics;
  }

  @Override
  protected InformerEventSourceConfiguration.Builder<R> informerConfigurationBuilder(
      EventSourceContext<FineTuneJob> context) {
    return OwnedInformers.managed(super.informerConfigurationBuilder(context), informerName);
  }

  @Override
  protected boolean addOwnerReference() {
    return true;
  }

  /** Which object this is, also when it is only to be deleted (serving turned off). */
  @Override
  protected ResourceID targetSecondaryResourceID(
      FineTuneJob primary, Context<FineTuneJob> context) {
    return new ResourceID(name.apply(primary), primary.getMetadata().getNamespace());
  }

  @Override
  protected Optional<SecondaryToPrimaryMapper<R>> getSecondaryToPrimaryMapper(
      EventSourceContext<FineTuneJob> context) {
    return Optional.of(Mappers.fromOwnerReferences(FineTuneJob.class));
  }

  @Override
  protected void onCreated(FineTuneJob primary, R created, Context<FineTuneJob> context) {
    super.onCreated(primary, created, context);
    metrics.childWritten(resourceType().getSimpleName(), "create");
  }

  @Override
  protected void onUpdated(FineTuneJob primary, R updated, R actual, Context<FineTuneJob> context) {
    super.onUpdated(primary, updated, actual, context);
    metrics.childWritten(resourceType().getSimpleName(), "update");
  }

  @Override
  protected void handleDelete(FineTuneJob primary, R secondary, Context<FineTuneJob> context) {
    super.handleDelete(primary, secondary, context);
    metrics.childWritten(resourceType().getSimpleName(), "delete");
  }
}
