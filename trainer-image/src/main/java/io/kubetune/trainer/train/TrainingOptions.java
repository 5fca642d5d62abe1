package io.kubetune.trainer.train;

import io.kubetune.api.Bounds;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec.Precision;
import io.kubetune.api.v1alpha1.LoraSpec;
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
 * @param generationMaxExamples held-out prompts answered greedily at each evaluation for
 *     exact_match, bleu and rouge_l (completion and chat); 0: no generation metrics
 * @param generationMaxNewTokens most tokens generated per answer
 * @param exportBest export the weights of the best checkpoint by {@code metric}, not the last
 *     step's
 * @param gradientCheckpointing recompute each decoder layer's activations in the backward pass
 *     instead of keeping them (same gradients, less memory, about one more forward pass of time)
 * @param precision bf16: frozen base weights held and multiplied in bf16 (see docs/trainer.md)
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
    int generationMaxExamples,
    int generationMaxNewTokens,
    boolean exportBest,
    boolean gradientCheckpointing,
    Precision precision,
    Path output) {

  /** The API's defaults (the shared table in {@code io.kubetune.api.Bounds}) for a LoRA run. */
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
        Bounds.LORA_RANK_DEFAULT,
        Bounds.LORA_ALPHA_DEFAULT,
        Bounds.LORA_DROPOUT_DEFAULT,
        LoraSpec.DEFAULT_TARGET_MODULES,
        1,
        Bounds.EPOCHS_DEFAULT,
        null,
        Bounds.LEARNING_RATE_DEFAULT,
        Bounds.BATCH_SIZE_DEFAULT,
        Bounds.GRADIENT_ACCUMULATION_DEFAULT,
        Bounds.MAX_SEQUENCE_LENGTH_DEFAULT,
        Bounds.WARMUP_STEPS_DEFAULT,
        Bounds.WEIGHT_DECAY_DEFAULT,
        Bounds.MAX_GRAD_NORM_DEFAULT,
        Bounds.SEED_DEFAULT,
        Bounds.EVAL_EVERY_STEPS_DEFAULT,
        0,
        EvalMetric.EVAL_LOSS.key(),
        EvalMetric.EVAL_LOSS.higherIsBetter(),
        0,
        Bounds.GENERATION_MAX_NEW_TOKENS_DEFAULT,
        false,
        false,
        HyperparametersSpec.DEFAULT_PRECISION,
        output);
  }

  public TrainingOptions withValidationSplit(double fraction) {
    return toBuilder().validation(null).validationSplit(fraction).build();
  }

  public TrainingOptions withValidation(Path file) {
    return toBuilder().validation(file).validationSplit(null).build();
  }

  public TrainingOptions withMethod(
      TrainingMethod m, int rank, double alpha, List<String> targets, int layers) {
    return toBuilder()
        .method(m)
        .loraRank(rank)
        .loraAlpha(alpha)
        .loraTargetModules(targets)
        .trainableLayers(layers)
        .build();
  }

  public TrainingOptions withSchedule(
      Integer steps, int epochCount, double lr, int batch, int accumulation, int warmup) {
    return toBuilder()
        .maxSteps(steps)
        .epochs(epochCount)
        .learningRate(lr)
        .batchSize(batch)
        .gradientAccumulation(accumulation)
        .warmupSteps(warmup)
        .build();
  }

  public TrainingOptions withEvaluation(
      int everySteps, int patience, String metricKey, boolean higherIsBetter) {
    return toBuilder()
        .evalEverySteps(everySteps)
        .earlyStoppingPatience(patience)
        .metric(metricKey)
        .metricHigherIsBetter(higherIsBetter)
        .build();
  }

  /** Generation metrics on the first {@code maxExamples} held-out prompts (0: none). */
  public TrainingOptions withGeneration(int maxExamples, int maxNewTokens) {
    return toBuilder()
        .generationMaxExamples(maxExamples)
        .generationMaxNewTokens(maxNewTokens)
        .build();
  }

  public TrainingOptions withRegularisation(
      double decay, double gradNorm, double dropout, long newSeed) {
    return toBuilder()
        .weightDecay(decay)
        .maxGradNorm(gradNorm)
        .loraDropout(dropout)
        .seed(newSeed)
        .build();
  }

  public TrainingOptions withGradientCheckpointing(boolean on) {
    return toBuilder().gradientCheckpointing(on).build();
  }

  public TrainingOptions withPrecision(Precision value) {
    return toBuilder().precision(value).build();
  }

  public TrainingOptions withMaxSequenceLength(int length) {
    return toBuilder().maxSequenceLength(length).build();
  }

  public TrainingOptions withLabels(List<String> labelSet) {
    return toBuilder().labels(labelSet).build();
  }

  /** A copy to change some fields of: {@code options.toBuilder().learningRate(1e-3).build()}. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** Mutable copy of the options, one setter per field. */
  public static final class Builder {
    private Path baseModel;
    private String baseModelName;
    private Path train;
    private Path validation;
    private Double validationSplit;
    private DatasetFormat format;
    private List<String> labels;
    private JsonlDataset.Fields fields;
    private TrainingMethod method;
    private int loraRank;
    private double loraAlpha;
    private double loraDropout;
    private List<String> loraTargetModules;
    private int trainableLayers;
    private int epochs;
    private Integer maxSteps;
    private double learningRate;
    private int batchSize;
    private int gradientAccumulation;
    private int maxSequenceLength;
    private int warmupSteps;
    private double weightDecay;
    private double maxGradNorm;
    private long seed;
    private int evalEverySteps;
    private int earlyStoppingPatience;
    private String metric;
    private boolean metricHigherIsBetter;
    private int generationMaxExamples;
    private int generationMaxNewTokens;
    private boolean exportBest;
    private boolean gradientCheckpointing;
    private Precision precision;
    private Path output;

    private Builder(TrainingOptions o) {
      baseModel = o.baseModel;
      baseModelName = o.baseModelName;
      train = o.train;
      validation = o.validation;
      validationSplit = o.validationSplit;
      format = o.format;
      labels = o.labels;
      fields = o.fields;
      method = o.method;
      loraRank = o.loraRank;
      loraAlpha = o.loraAlpha;
      loraDropout = o.loraDropout;
      loraTargetModules = o.loraTargetModules;
      trainableLayers = o.trainableLayers;
      epochs = o.epochs;
      maxSteps = o.maxSteps;
      learningRate = o.learningRate;
      batchSize = o.batchSize;
      gradientAccumulation = o.gradientAccumulation;
      maxSequenceLength = o.maxSequenceLength;
      warmupSteps = o.warmupSteps;
      weightDecay = o.weightDecay;
      maxGradNorm = o.maxGradNorm;
      seed = o.seed;
      evalEverySteps = o.evalEverySteps;
      earlyStoppingPatience = o.earlyStoppingPatience;
      metric = o.metric;
      metricHigherIsBetter = o.metricHigherIsBetter;
      generationMaxExamples = o.generationMaxExamples;
      generationMaxNewTokens = o.generationMaxNewTokens;
      exportBest = o.exportBest;
      gradientCheckpointing = o.gradientCheckpointing;
      precision = o.precision;
      output = o.output;
    }

    public Builder baseModel(Path value) {
      baseModel = value;
      return this;
    }

    public Builder baseModelName(String value) {
      baseModelName = value;
      return this;
    }

    public Builder train(Path value) {
      train = value;
      return this;
    }

    public Builder validation(Path value) {
      validation = value;
      return this;
    }

    public Builder validationSplit(Double value) {
      validationSplit = value;
      return this;
    }

    public Builder format(DatasetFormat value) {
      format = value;
      return this;
    }

    public Builder labels(List<String> value) {
      labels = value;
      return this;
    }

    public Builder fields(JsonlDataset.Fields value) {
      fields = value;
      return this;
    }

    public Builder method(TrainingMethod value) {
      method = value;
      return this;
    }

    public Builder loraRank(int value) {
      loraRank = value;
      return this;
    }

    public Builder loraAlpha(double value) {
      loraAlpha = value;
      return this;
    }

    public Builder loraDropout(double value) {
      loraDropout = value;
      return this;
    }

    public Builder loraTargetModules(List<String> value) {
      loraTargetModules = value;
      return this;
    }

    public Builder trainableLayers(int value) {
      trainableLayers = value;
      return this;
    }

    public Builder epochs(int value) {
      epochs = value;
      return this;
    }

    public Builder maxSteps(Integer value) {
      maxSteps = value;
      return this;
    }

    public Builder learningRate(double value) {
      learningRate = value;
      return this;
    }

    public Builder batchSize(int value) {
      batchSize = value;
      return this;
    }

    public Builder gradientAccumulation(int value) {
      gradientAccumulation = value;
      return this;
    }

    public Builder maxSequenceLength(int value) {
      maxSequenceLength = value;
      return this;
    }

    public Builder warmupSteps(int value) {
      warmupSteps = value;
      return this;
    }

    public Builder weightDecay(double value) {
      weightDecay = value;
      return this;
    }

    public Builder maxGradNorm(double value) {
      maxGradNorm = value;
      return this;
    }

    public Builder seed(long value) {
      seed = value;
      return this;
    }

    public Builder evalEverySteps(int value) {
      evalEverySteps = value;
      return this;
    }

    public Builder earlyStoppingPatience(int value) {
      earlyStoppingPatience = value;
      return this;
    }

    public Builder metric(String value) {
      metric = value;
      return this;
    }

    public Builder metricHigherIsBetter(boolean value) {
      metricHigherIsBetter = value;
      return this;
    }

    public Builder generationMaxExamples(int value) {
      generationMaxExamples = value;
      return this;
    }

    public Builder generationMaxNewTokens(int value) {
      generationMaxNewTokens = value;
      return this;
    }

    public Builder exportBest(boolean value) {
      exportBest = value;
      return this;
    }

    public Builder gradientCheckpointing(boolean value) {
      gradientCheckpointing = value;
      return this;
    }

    public Builder precision(Precision value) {
      precision = value;
      return this;
    }

    public Builder output(Path value) {
      output = value;
      return this;
    }

    public TrainingOptions build() {
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
          evalEverySteps,
          earlyStoppingPatience,
          metric,
          metricHigherIsBetter,
          generationMaxExamples,
          generationMaxNewTokens,
          exportBest,
          gradientCheckpointing,
          precision,
          output);
    }
  }
}
