package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import java.util.Map;

/** The ConfigMap carrying the trainer contract document. */
public final class TrainerConfigMapBuilder {
  private TrainerConfigMapBuilder() {}

  public static ConfigMap build(FineTuneJob job) {
    TrainerConfig config = TrainerConfigModel.from(job);
    return new ConfigMapBuilder()
        .withNewMetadata()
        .withName(Names.trainerConfigMap(job))
        .withNamespace(job.getMetadata().getNamespace())
        .withLabels(Labels.training(job))
        .withAnnotations(Map.of(Labels.TRAINING_REVISION_ANNOTATION, config.job.trainingRevision))
        .withOwnerReferences(Owners.controllerReference(job))
        .endMetadata()
        .withData(Map.of(TrainerConfig.CONFIG_MAP_KEY, Json.pretty(config)))
        .build();
  }
}
