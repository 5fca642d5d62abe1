package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Labels;
import io.kubetune.operator.support.Json;
import java.util.Map;

/** The ConfigMap carrying the trainer contract document. */
public final class TrainerConfigMapBuilder {
  private TrainerConfigMapBuilder() {}

  public static ConfigMap build(FineTuneJobModel model) {
    FineTuneJob job = model.cr();
    TrainerConfig config = TrainerConfigModel.from(model);
    return new ConfigMapBuilder()
        .withNewMetadata()
        .withName(model.trainerConfigMapName())
        .withNamespace(model.namespace())
        .withLabels(Labels.training(job))
        .withAnnotations(Map.of(Labels.TRAINING_REVISION_ANNOTATION, config.job.trainingRevision))
        .withOwnerReferences(Owners.controllerReference(job))
        .endMetadata()
        .withData(Map.of(TrainerConfig.CONFIG_MAP_KEY, Json.pretty(config)))
        .build();
  }
}
