package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.Service;
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
import java.util.Objects;
import java.util.Optional;

/**
 * The serving Service in front of the Deployment's pods. Compared on what the operator sets
 * (selector, ports, labels): the API server fills in cluster IPs and defaults that must not count
 * as drift. Deleted when serving is turned off.
 */
public class ServingServiceDependent
    extends CRUDNoGCKubernetesDependentResource<Service, FineTuneJob> {
  public static final String NAME = "services";

  private final FineTuneJobMetrics metrics;

  public ServingServiceDependent(FineTuneJobMetrics metrics) {
    super(Service.class);
    this.metrics = metrics;
  }

  @Override
  protected InformerEventSourceConfiguration.Builder<Service> informerConfigurationBuilder(
      EventSourceContext<FineTuneJob> context) {
    return OwnedInformers.managed(super.informerConfigurationBuilder(context), NAME);
  }

  @Override
  protected Service desired(FineTuneJob primary, Context<FineTuneJob> context) {
    return ServingModel.service(Desired.model(context));
  }

  @Override
  public Matcher.Result<Service> match(
      Service actual, Service desired, FineTuneJob primary, Context<FineTuneJob> context) {
    boolean same =
        Objects.equals(actual.getSpec().getSelector(), desired.getSpec().getSelector())
            && Objects.equals(actual.getSpec().getPorts(), desired.getSpec().getPorts())
            && OwnedInformers.containsAll(
                actual.getMetadata().getLabels(), desired.getMetadata().getLabels());
    return Matcher.Result.computed(same, desired);
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
    return new ResourceID(Names.servingService(primary), primary.getMetadata().getNamespace());
  }

  /** Events map back by owner reference, as for the GC-owned dependents (not by annotations). */
  @Override
  protected Optional<SecondaryToPrimaryMapper<Service>> getSecondaryToPrimaryMapper(
      EventSourceContext<FineTuneJob> context) {
    return Optional.of(Mappers.fromOwnerReferences(FineTuneJob.class));
  }

  @Override
  protected void onCreated(FineTuneJob primary, Service created, Context<FineTuneJob> context) {
    super.onCreated(primary, created, context);
    metrics.childWritten("Service", "create");
  }

  @Override
  protected void handleDelete(
      FineTuneJob primary, Service secondary, Context<FineTuneJob> context) {
    super.handleDelete(primary, secondary, context);
    metrics.childWritten("Service", "delete");
  }
}
