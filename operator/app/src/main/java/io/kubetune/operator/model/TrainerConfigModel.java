package io.kubetune.operator.model;

import io.kubetune.api.StorageUri;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.BaseModelSpec;
import io.kubetune.api.v1alpha1.CheckpointsSpec;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.operator.support.Json;
import java.util.ArrayList;
import java.util.Objects;

/**
 * Renders the trainer contract from a FineTuneJob: every default resolved, pvc:// URIs rewritten to
 * their mount paths. Pure: the same FineTuneJob always gives the same document.
 */
public final class TrainerConfigModel {
  private TrainerConfigModel() {}

  public static TrainerConfig from(FineTuneJobModel model) {
    FineTuneJob job = model.cr();
    FineTuneJobSpec spec = model.spec();
    TrainerConfig config = new TrainerConfig();

    config.job = new TrainerConfig.JobIdentity();
    config.job.namespace = job.getMetadata().getNamespace();
    config.job.name = job.getMetadata().getName();
    config.job.uid = job.getMetadata().getUid();
    config.job.trainingRevision = model.trainingRevision();

    config.baseModel = Json.copy(spec.baseModel, BaseModelSpec.class);
    config.baseModel.uri = model.baseModelInPod();

    config.dataset = Json.copy(spec.dataset, DatasetSpec.class);
    config.dataset.train = inPod(spec.dataset.train);
    if (spec.dataset.validation != null) {
      config.dataset.validation = inPod(spec.dataset.validation);
    }

    config.method = resolveMethod(spec.method);
    config.hyperparameters = resolveHyperparameters(spec.hyperparameters);
    config.checkpoints = resolveCheckpoints(spec.checkpoints, model.checkpoints().inPod());

    if (spec.storage != null) {
      config.storage = new TrainerConfig.StorageSettings();
      config.storage.endpoint = spec.storage.endpoint;
      config.storage.region = model.storageRegion();
      config.storage.pathStyle = Boolean.TRUE.equals(spec.storage.pathStyle);
    }

    config.output = new TrainerConfig.Output();
    config.output.uri = StorageUri.parse(model.adapterUri()).inPod();

    config.evaluation = new TrainerConfig.Evaluation();
    config.evaluation.metric = model.evaluationMetric();
    // Always evaluate the base model too: the quality gate is a serving field and may change
    // after training started, so the trainer records both sides regardless.
    config.evaluation.compareWithBase = true;
    return config;
  }

  private static String inPod(String uri) {
    return StorageUri.parse(uri).inPod();
  }

  static MethodSpec resolveMethod(MethodSpec method) {
    MethodSpec resolved = Json.copy(method, MethodSpec.class);
    if (resolved.type == MethodSpec.Type.LoRA) {
      LoraSpec lora = resolved.lora != null ? resolved.lora : new LoraSpec();
      lora.rank = Objects.requireNonNullElse(lora.rank, LoraSpec.DEFAULT_RANK);
      lora.alpha = Objects.requireNonNullElse(lora.alpha, LoraSpec.DEFAULT_ALPHA);
      lora.dropout = Objects.requireNonNullElse(lora.dropout, LoraSpec.DEFAULT_DROPOUT);
      lora.targetModules =
          new ArrayList<>(
              Objects.requireNonNullElse(lora.targetModules, LoraSpec.DEFAULT_TARGET_MODULES));
      resolved.lora = lora;
    }
    return resolved;
  }

  static HyperparametersSpec resolveHyperparameters(HyperparametersSpec given) {
    HyperparametersSpec h =
        given != null ? Json.copy(given, HyperparametersSpec.class) : new HyperparametersSpec();
    if (h.maxSteps == null) {
      h.epochs = Objects.requireNonNullElse(h.epochs, HyperparametersSpec.DEFAULT_EPOCHS);
    }
    h.learningRate =
        Objects.requireNonNullElse(h.learningRate, HyperparametersSpec.DEFAULT_LEARNING_RATE);
    h.batchSize = Objects.requireNonNullElse(h.batchSize, HyperparametersSpec.DEFAULT_BATCH_SIZE);
    h.gradientAccumulation =
        Objects.requireNonNullElse(
            h.gradientAccumulation, HyperparametersSpec.DEFAULT_GRADIENT_ACCUMULATION);
    h.maxSequenceLength =
        Objects.requireNonNullElse(
            h.maxSequenceLength, HyperparametersSpec.DEFAULT_MAX_SEQUENCE_LENGTH);
    h.warmupSteps =
        Objects.requireNonNullElse(h.warmupSteps, HyperparametersSpec.DEFAULT_WARMUP_STEPS);
    h.weightDecay =
        Objects.requireNonNullElse(h.weightDecay, HyperparametersSpec.DEFAULT_WEIGHT_DECAY);
    h.maxGradNorm =
        Objects.requireNonNullElse(h.maxGradNorm, HyperparametersSpec.DEFAULT_MAX_GRAD_NORM);
    h.seed = Objects.requireNonNullElse(h.seed, HyperparametersSpec.DEFAULT_SEED);
    h.evalEverySteps =
        Objects.requireNonNullElse(h.evalEverySteps, HyperparametersSpec.DEFAULT_EVAL_EVERY_STEPS);
    if (h.earlyStopping != null && h.earlyStopping.metric == null) {
      h.earlyStopping.metric = EvalMetric.EVAL_LOSS;
    }
    return h;
  }

  static CheckpointsSpec resolveCheckpoints(CheckpointsSpec given, String inPod) {
    CheckpointsSpec c = Json.copy(given, CheckpointsSpec.class);
    c.uri = inPod;
    c.everySteps = Objects.requireNonNullElse(c.everySteps, CheckpointsSpec.DEFAULT_EVERY_STEPS);
    c.keepLast = Objects.requireNonNullElse(c.keepLast, CheckpointsSpec.DEFAULT_KEEP_LAST);
    return c;
  }
}
