package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import io.kubetune.api.Bounds;

/** Optimisation settings; null means "use the default" documented on each field. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "!(has(self.epochs) && has(self.maxSteps))",
    message = "set hyperparameters.epochs or hyperparameters.maxSteps, not both")
public class HyperparametersSpec {
  // Defaults and bounds live in Bounds; these names remain for callers.
  public static final int DEFAULT_EPOCHS = Bounds.EPOCHS_DEFAULT;
  public static final double DEFAULT_LEARNING_RATE = Bounds.LEARNING_RATE_DEFAULT;
  public static final int DEFAULT_BATCH_SIZE = Bounds.BATCH_SIZE_DEFAULT;
  public static final int DEFAULT_GRADIENT_ACCUMULATION = Bounds.GRADIENT_ACCUMULATION_DEFAULT;
  public static final int DEFAULT_MAX_SEQUENCE_LENGTH = Bounds.MAX_SEQUENCE_LENGTH_DEFAULT;
  public static final int DEFAULT_WARMUP_STEPS = Bounds.WARMUP_STEPS_DEFAULT;
  public static final double DEFAULT_WEIGHT_DECAY = Bounds.WEIGHT_DECAY_DEFAULT;
  public static final double DEFAULT_MAX_GRAD_NORM = Bounds.MAX_GRAD_NORM_DEFAULT;
  public static final long DEFAULT_SEED = Bounds.SEED_DEFAULT;
  public static final int DEFAULT_EVAL_EVERY_STEPS = Bounds.EVAL_EVERY_STEPS_DEFAULT;
  // A string so the description below can name it (annotation values are constants).
  private static final String DEFAULT_PRECISION_NAME = "fp32";
  public static final Precision DEFAULT_PRECISION = Precision.valueOf(DEFAULT_PRECISION_NAME);

  /** Number format of the frozen base weights and their matrix products. */
  public enum Precision {
    /** Everything in fp32. */
    fp32,
    /**
     * Frozen base weights stored and multiplied in bf16 (fp32 accumulation); trained weights,
     * gradients, optimizer state, norms, softmax and the loss in fp32.
     */
    bf16
  }

  @Min(Bounds.EPOCHS_MIN)
  @Max(Bounds.EPOCHS_MAX)
  @JsonPropertyDescription(
      "Passes over the training data. Default "
          + Bounds.EPOCHS_DEFAULT
          + ". Exclusive with maxSteps.")
  public Integer epochs;

  @Min(Bounds.MAX_STEPS_MIN)
  @JsonPropertyDescription("Optimizer steps to run instead of whole epochs. Exclusive with epochs.")
  public Integer maxSteps;

  @Min(value = Bounds.LEARNING_RATE_MIN_EXCLUSIVE, inclusive = false)
  @Max(Bounds.LEARNING_RATE_MAX)
  @JsonPropertyDescription(
      "Peak learning rate (AdamW). Default " + Bounds.LEARNING_RATE_DEFAULT + ".")
  public Double learningRate;

  @Min(Bounds.BATCH_SIZE_MIN)
  @Max(Bounds.BATCH_SIZE_MAX)
  @JsonPropertyDescription("Sequences per micro-batch. Default " + Bounds.BATCH_SIZE_DEFAULT + ".")
  public Integer batchSize;

  @Min(Bounds.GRADIENT_ACCUMULATION_MIN)
  @Max(Bounds.GRADIENT_ACCUMULATION_MAX)
  @JsonPropertyDescription(
      "Micro-batches accumulated per optimizer step (effective batch = batchSize x this)."
          + " Default "
          + Bounds.GRADIENT_ACCUMULATION_DEFAULT
          + ".")
  public Integer gradientAccumulation;

  @Min(Bounds.MAX_SEQUENCE_LENGTH_MIN)
  @Max(Bounds.MAX_SEQUENCE_LENGTH_MAX)
  @JsonPropertyDescription(
      "Longest tokenized example; longer ones are a data error. Default "
          + Bounds.MAX_SEQUENCE_LENGTH_DEFAULT
          + ", at most the model's max_position_embeddings.")
  public Integer maxSequenceLength;

  @Min(Bounds.WARMUP_STEPS_MIN)
  @JsonPropertyDescription(
      "Linear warm-up steps before cosine decay. Default " + Bounds.WARMUP_STEPS_DEFAULT + ".")
  public Integer warmupSteps;

  @Min(Bounds.WEIGHT_DECAY_MIN)
  @Max(Bounds.WEIGHT_DECAY_MAX)
  @JsonPropertyDescription(
      "AdamW decoupled weight decay (never applied to norms and biases). Default "
          + Bounds.WEIGHT_DECAY_DEFAULT
          + ".")
  public Double weightDecay;

  @Min(Bounds.MAX_GRAD_NORM_MIN)
  @JsonPropertyDescription(
      "Global gradient-norm clipping threshold; 0 disables. Default "
          + Bounds.MAX_GRAD_NORM_DEFAULT
          + ".")
  public Double maxGradNorm;

  @Min(Bounds.SEED_MIN)
  @JsonPropertyDescription(
      "Seed for initialisation, data order and splits. Default " + Bounds.SEED_DEFAULT + ".")
  public Long seed;

  @Min(Bounds.EVAL_EVERY_STEPS_MIN)
  @JsonPropertyDescription(
      "Evaluate on the validation split every N optimizer steps. Default "
          + Bounds.EVAL_EVERY_STEPS_DEFAULT
          + ".")
  public Integer evalEverySteps;

  @JsonPropertyDescription("Stop when the validation metric stops improving.")
  public EarlyStoppingSpec earlyStopping;

  @JsonPropertyDescription(
      "Gradient checkpointing: keep only each decoder layer's input during the forward pass and"
          + " recompute the layer's activations in the backward pass. Same gradients, much less"
          + " activation memory, about one more forward pass of time per step. Default false.")
  public Boolean gradientCheckpointing;

  @Size(max = 8)
  @JsonPropertyDescription(
      "Mixed precision: bf16 stores the frozen base weights in bfloat16 (half the memory) and"
          + " multiplies by them in bf16 with fp32 accumulation; trained weights (LoRA adapters,"
          + " unfrozen layers), gradients, optimizer state, norms, softmax and the loss stay in"
          + " fp32. Faster on GPUs and CPUs with native bf16 (AMX, AVX512-BF16), slower on CPUs"
          + " without it. Not for method Full, which freezes nothing. fp32 or bf16; default "
          + DEFAULT_PRECISION_NAME
          + ".")
  public Precision precision;
}
