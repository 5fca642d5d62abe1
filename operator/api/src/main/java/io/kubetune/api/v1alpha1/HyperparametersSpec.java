package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.ValidationRule;

/** Optimisation settings; null means "use the default" documented on each field. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "!(has(self.epochs) && has(self.maxSteps))",
    message = "set hyperparameters.epochs or hyperparameters.maxSteps, not both")
public class HyperparametersSpec {
  public static final int DEFAULT_EPOCHS = 1;
  public static final double DEFAULT_LEARNING_RATE = 2e-4;
  public static final int DEFAULT_BATCH_SIZE = 8;
  public static final int DEFAULT_GRADIENT_ACCUMULATION = 1;
  public static final int DEFAULT_MAX_SEQUENCE_LENGTH = 512;
  public static final int DEFAULT_WARMUP_STEPS = 0;
  public static final double DEFAULT_WEIGHT_DECAY = 0.0;
  public static final double DEFAULT_MAX_GRAD_NORM = 1.0;
  public static final long DEFAULT_SEED = 42;
  public static final int DEFAULT_EVAL_EVERY_STEPS = 100;

  @Min(1)
  @Max(10000)
  @JsonPropertyDescription("Passes over the training data. Default 1. Exclusive with maxSteps.")
  public Integer epochs;

  @Min(1)
  @JsonPropertyDescription("Optimizer steps to run instead of whole epochs. Exclusive with epochs.")
  public Integer maxSteps;

  @Min(0.0)
  @Max(1.0)
  @JsonPropertyDescription("Peak learning rate (AdamW). Default 2e-4.")
  public Double learningRate;

  @Min(1)
  @Max(4096)
  @JsonPropertyDescription("Sequences per micro-batch. Default 8.")
  public Integer batchSize;

  @Min(1)
  @Max(1024)
  @JsonPropertyDescription(
      "Micro-batches accumulated per optimizer step (effective batch = batchSize x this)."
          + " Default 1.")
  public Integer gradientAccumulation;

  @Min(8)
  @Max(131072)
  @JsonPropertyDescription(
      "Longest tokenized example; longer ones are a data error. Default 512, at most the"
          + " model's max_position_embeddings.")
  public Integer maxSequenceLength;

  @Min(0)
  @JsonPropertyDescription("Linear warm-up steps before cosine decay. Default 0.")
  public Integer warmupSteps;

  @Min(0.0)
  @Max(1.0)
  @JsonPropertyDescription(
      "AdamW decoupled weight decay (never applied to norms and biases). Default 0.")
  public Double weightDecay;

  @Min(0.0)
  @JsonPropertyDescription("Global gradient-norm clipping threshold; 0 disables. Default 1.0.")
  public Double maxGradNorm;

  @Min(0)
  @JsonPropertyDescription("Seed for initialisation, data order and splits. Default 42.")
  public Long seed;

  @Min(1)
  @JsonPropertyDescription("Evaluate on the validation split every N optimizer steps. Default 100.")
  public Integer evalEverySteps;

  @JsonPropertyDescription("Stop when the validation metric stops improving.")
  public EarlyStoppingSpec earlyStopping;
}
