package io.kubetune.trainer.train;

import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.data.JsonlDataset;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything one training run needs, with every default resolved. Built from the operator's {@code
 * TrainerConfig} by {@link TrainerConfigMapping}; tests build it directly.
 *
 * @param epochs used when {@code maxSteps} is null
 * @param validation a validation file, or null to split {@code validationSplit} off the train file
 *     (no validation when both are null)
 * @param labels classification label set, or null for the sorted labels of the train file
 * @param earlyStoppingPatience evaluations without improvement before stopping; 0 disables it
 * @param metric eval metric key for early stopping and the best step (eval_loss, accuracy, ...)
 */
public record TrainingOptions(
    Path baseModel,
    String baseModelName,
    Path train,
    Path validation,
    Double validationSplit,
    DatasetFormat format,
    List<String> labels,
    JsonlDataset.Fields fields,
    TrainingMethod method,
    int loraRank,
    double loraAlpha,
    double loraDropout,
    List<String> loraTargetModules,
    int trainableLayers,
    int epochs,
    Integer maxSteps,
    double learningRate,
    int batchSize,
    int gradientAccumulation,
    int maxSequenceLength,
    int warmupSteps,
    double weightDecay,
    double maxGradNorm,
    long seed,
    int evalEverySteps,
    int earlyStoppingPatience,
    String metric,
    boolean metricHigherIsBetter,
    Path output) {

  /** Sensible small-run defaults for tests and the CLI; override with the wither methods. */
  public static TrainingOptions defaults(
      Path baseModel, Path train, DatasetFormat format, Path output) {
    return new TrainingOptions(
        baseModel,
        baseModel.toString(),
        train,
        null,
        null,
        format,
        null,
        JsonlDataset.Fields.DEFAULT,
        TrainingMethod.LORA,
        8,
        16,
        0.0,
        List.of("q_proj", "v_proj"),
        1,
        1,
        null,
        2e-4,
        8,
        1,
        512,
        0,
        0.0,
        1.0,
        42,
        100,
        0,
        "eval_loss",
        false,
        output);
  }

  public TrainingOptions withValidationSplit(double fraction) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        null,
        fraction,
        format,
        labels,
        fields,
        method,
        loraRank,
        loraAlpha,
        loraDropout,
        loraTargetModules,
        trainableLayers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        maxSequenceLength,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        seed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }

  public TrainingOptions withValidation(Path file) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        file,
        null,
        format,
        labels,
        fields,
        method,
        loraRank,
        loraAlpha,
        loraDropout,
        loraTargetModules,
        trainableLayers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        maxSequenceLength,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        seed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }

  public TrainingOptions withMethod(
      TrainingMethod m, int rank, double alpha, List<String> targets, int layers) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        validation,
        validationSplit,
        format,
        labels,
        fields,
        m,
        rank,
        alpha,
        loraDropout,
        targets,
        layers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        maxSequenceLength,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        seed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }

  public TrainingOptions withSchedule(
      Integer steps, int epochCount, double lr, int batch, int accumulation, int warmup) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        validation,
        validationSplit,
        format,
        labels,
        fields,
        method,
        loraRank,
        loraAlpha,
        loraDropout,
        loraTargetModules,
        trainableLayers,
        epochCount,
        steps,
        lr,
        batch,
        accumulation,
        maxSequenceLength,
        warmup,
        weightDecay,
        maxGradNorm,
        seed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }

  public TrainingOptions withEvaluation(
      int everySteps, int patience, String metricKey, boolean higherIsBetter) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        validation,
        validationSplit,
        format,
        labels,
        fields,
        method,
        loraRank,
        loraAlpha,
        loraDropout,
        loraTargetModules,
        trainableLayers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        maxSequenceLength,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        seed,
        everySteps,
        patience,
        metricKey,
        higherIsBetter,
        output);
  }

  public TrainingOptions withRegularisation(
      double decay, double gradNorm, double dropout, long newSeed) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        validation,
        validationSplit,
        format,
        labels,
        fields,
        method,
        loraRank,
        loraAlpha,
        dropout,
        loraTargetModules,
        trainableLayers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        maxSequenceLength,
        warmupSteps,
        decay,
        gradNorm,
        newSeed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }

  public TrainingOptions withMaxSequenceLength(int length) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        validation,
        validationSplit,
        format,
        labels,
        fields,
        method,
        loraRank,
        loraAlpha,
        loraDropout,
        loraTargetModules,
        trainableLayers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        length,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        seed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }

  public TrainingOptions withLabels(List<String> labelSet) {
    return new TrainingOptions(
        baseModel,
        baseModelName,
        train,
        validation,
        validationSplit,
        format,
        labelSet,
        fields,
        method,
        loraRank,
        loraAlpha,
        loraDropout,
        loraTargetModules,
        trainableLayers,
        epochs,
        maxSteps,
        learningRate,
        batchSize,
        gradientAccumulation,
        maxSequenceLength,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        seed,
        evalEverySteps,
        earlyStoppingPatience,
        metric,
        metricHigherIsBetter,
        output);
  }
}
