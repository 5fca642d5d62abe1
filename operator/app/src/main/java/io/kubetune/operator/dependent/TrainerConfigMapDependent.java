package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.dependent.Matcher;
import io.javaoperatorsdk.operator.processing.dependent.kubernetes.CRUDKubernetesDependentResource;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.TrainerConfigMapBuilder;
import java.util.Objects;

/**
 * The trainer's ConfigMap, from {@link TrainerConfigMapBuilder} over the reconcile's model. The
 * controller reconciles it before the training Job gate (the Job mounts it) and only while no Job
 * of another revision is being replaced, so a running trainer never sees its config change.
 * Garbage-collected with the FineTuneJob.
 */
public class TrainerConfigMapDependent
    extends CRUDKubernetesDependentResource<ConfigMap, FineTuneJob> {
  public static final String NAME = "configmaps";

  private final FineTuneJobMetrics metrics;

  public TrainerConfigMapDependent(FineTuneJobMetrics metrics) {
    super(ConfigMap.class);
    this.metrics = metrics;
  }

  @Override
  protected InformerEventSourceConfiguration.Builder<ConfigMap> informerConfigurationBuilder(
      EventSourceContext<FineTuneJob> context) {
    return OwnedInformers.managed(super.informerConfigurationBuilder(context), NAME);
  }

  @Override
  protected ConfigMap desired(FineTuneJob primary, Context<FineTuneJob> context) {
    return TrainerConfigMapBuilder.build(Desired.model(context));
  }

  /** Same document, and the labels and annotations the operator sets (others may add theirs). */
  @Override
  public Matcher.Result<ConfigMap> match(
      ConfigMap actual, ConfigMap desired, FineTuneJob primary, Context<FineTuneJob> context) {
    boolean same =
        Objects.equals(actual.getData(), desired.getData())
            && OwnedInformers.containsAll(
                actual.getMetadata().getLabels(), desired.getMetadata().getLabels())
            && OwnedInformers.containsAll(
                actual.getMetadata().getAnnotations(), desired.getMetadata().getAnnotations());
    return Matcher.Result.computed(same, desired);
  }

  @Override
  protected void onCreated(FineTuneJob primary, ConfigMap created, Context<FineTuneJob> context) {
    super.onCreated(primary, created, context);
    metrics.childWritten("ConfigMap", "create");
  }

  @Override
  protected void onUpdated(
      FineTuneJob primary, ConfigMap updated, ConfigMap actual, Context<FineTuneJob> context) {
    super.onUpdated(primary, updated, actual, context);
    metrics.childWritten("ConfigMap", "update");
  }
}
