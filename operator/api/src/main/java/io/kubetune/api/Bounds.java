package io.kubetune.api;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The one table of numeric bounds and defaults of a FineTuneJob. The CRD annotations ({@code @Min},
 * {@code @Max} and the "Default N." in descriptions) are built from these constants, the operator's
 * validator and the trainer check values against {@link #ALL}, and the operator and the trainer
 * resolve defaults from them. {@code CrdAgreesWithBoundsTest} checks the generated CRD against the
 * table.
 *
 * <p>Defaults are documented in the schema's descriptions, not as schema {@code default:} values:
 * an API server would then write them into the stored spec, and {@code epochs} may not be defaulted
 * there at all (it is exclusive with {@code maxSteps}). The operator resolves them into the trainer
 * config instead, so the trainer always sees explicit values.
 */
public final class Bounds {
  private Bounds() {}

  // spec.hyperparameters
  public static final int EPOCHS_MIN = 1;
  public static final int EPOCHS_MAX = 10000;
  public static final int EPOCHS_DEFAULT = 1;
  public static final int MAX_STEPS_MIN = 1;
  public static final double LEARNING_RATE_MIN_EXCLUSIVE = 0.0;
  public static final double LEARNING_RATE_MAX = 1.0;
  public static final double LEARNING_RATE_DEFAULT = 2e-4;
  public static final int BATCH_SIZE_MIN = 1;
  public static final int BATCH_SIZE_MAX = 4096;
  public static final int BATCH_SIZE_DEFAULT = 8;
  public static final int GRADIENT_ACCUMULATION_MIN = 1;
  public static final int GRADIENT_ACCUMULATION_MAX = 1024;
  public static final int GRADIENT_ACCUMULATION_DEFAULT = 1;
  public static final int MAX_SEQUENCE_LENGTH_MIN = 8;
  public static final int MAX_SEQUENCE_LENGTH_MAX = 131072;
  public static final int MAX_SEQUENCE_LENGTH_DEFAULT = 512;
  public static final int WARMUP_STEPS_MIN = 0;
  public static final int WARMUP_STEPS_DEFAULT = 0;
  public static final double WEIGHT_DECAY_MIN = 0.0;
  public static final double WEIGHT_DECAY_MAX = 1.0;
  public static final double WEIGHT_DECAY_DEFAULT = 0.0;
  public static final double MAX_GRAD_NORM_MIN = 0.0;
  public static final double MAX_GRAD_NORM_DEFAULT = 1.0;
  public static final long SEED_MIN = 0;
  public static final long SEED_DEFAULT = 42;
  public static final int EVAL_EVERY_STEPS_MIN = 1;
  public static final int EVAL_EVERY_STEPS_DEFAULT = 100;
  public static final int PATIENCE_MIN = 1;
  public static final int PATIENCE_MAX = 1000;

  // spec.method
  public static final int LORA_RANK_MIN = 1;
  public static final int LORA_RANK_MAX = 1024;
  public static final int LORA_RANK_DEFAULT = 8;
  public static final double LORA_ALPHA_MIN_EXCLUSIVE = 0.0;
  public static final double LORA_ALPHA_MAX = 4096.0;
  public static final double LORA_ALPHA_DEFAULT = 16.0;
  public static final double LORA_DROPOUT_MIN = 0.0;

  /**
   * Inclusive: a real API server checks an integral value (0, written {@code 0.0} or {@code 0})
   * against a fractional bound truncated to an integer, so an exclusive maximum of 0.9 rejected
   * {@code dropout: 0} ("should be less than 0"); see docs/control-plane.md.
   */
  public static final double LORA_DROPOUT_MAX = 0.9;

  public static final double LORA_DROPOUT_DEFAULT = 0.05;
  public static final int TRAINABLE_LAYERS_MIN = 1;
  public static final int TRAINABLE_LAYERS_MAX = 1024;

  // spec.dataset
  public static final double VALIDATION_SPLIT_MIN = 0.01;
  public static final double VALIDATION_SPLIT_MAX = 0.5;

  // spec.checkpoints
  public static final int CHECKPOINT_EVERY_STEPS_MIN = 1;
  public static final int CHECKPOINT_EVERY_STEPS_DEFAULT = 100;
  public static final int KEEP_LAST_MIN = 1;
  public static final int KEEP_LAST_MAX = 100;
  public static final int KEEP_LAST_DEFAULT = 3;

  // spec.evaluation
  public static final int GENERATION_MAX_EXAMPLES_MIN = 0;
  public static final int GENERATION_MAX_EXAMPLES_MAX = 100000;
  public static final int GENERATION_MAX_EXAMPLES_DEFAULT = 32;
  public static final int GENERATION_MAX_NEW_TOKENS_MIN = 1;
  public static final int GENERATION_MAX_NEW_TOKENS_MAX = 32768;
  public static final int GENERATION_MAX_NEW_TOKENS_DEFAULT = 128;

  // spec (Job settings) and spec.resources, spec.serving
  public static final int BACKOFF_LIMIT_MIN = 0;
  public static final int BACKOFF_LIMIT_MAX = 100;
  public static final int BACKOFF_LIMIT_DEFAULT = 3;
  public static final int GPUS_MIN = 0;
  public static final int GPUS_MAX = 64;
  public static final int REPLICAS_MIN = 0;
  public static final int REPLICAS_MAX = 100;
  public static final int REPLICAS_DEFAULT = 1;

  // spec.serving.canary
  public static final int CANARY_WEIGHT_MIN = 1;
  public static final int CANARY_WEIGHT_MAX = 99;
  public static final int CANARY_WEIGHT_DEFAULT = 10;
  public static final double CANARY_MAX_ERROR_RATE_MIN = 0.0;
  public static final double CANARY_MAX_ERROR_RATE_MAX = 1.0;
  public static final double CANARY_MAX_ERROR_RATE_DEFAULT = 0.01;

  /**
   * Default of serving.canary.duration (a duration string, not a numeric bound; the same format as
   * serving.readinessTimeout).
   */
  public static final String CANARY_DURATION_DEFAULT = "10m";

  /** spec.storage.region when unset (the AWS SDK's usual default). */
  public static final String STORAGE_REGION_DEFAULT = "us-east-1";

  /**
   * One numeric field: its path below {@code spec} (the trainer config uses the same paths), its
   * range and its default (null when it has none).
   */
  public record Bound(
      String field,
      double min,
      boolean minInclusive,
      double max,
      boolean maxInclusive,
      Number defaultValue,
      boolean integral) {

    /** What is wrong with {@code value} and the fix, or empty when it is in range. */
    public Optional<String> problem(Number value) {
      if (value == null) {
        return Optional.empty();
      }
      double v = value.doubleValue();
      boolean aboveMin = minInclusive ? v >= min : v > min;
      boolean belowMax = maxInclusive ? v <= max : v < max;
      if (aboveMin && belowMax && !Double.isNaN(v)) {
        return Optional.empty();
      }
      return Optional.of("is " + value + "; use " + range());
    }

    /** The range in words, e.g. "a value in [0, 0.9)" or "an integer of at least 1". */
    public String range() {
      String kind = integral ? "an integer" : "a value";
      if (Double.isInfinite(max)) {
        return kind + (minInclusive ? " of at least " : " above ") + format(min);
      }
      return kind
          + " in "
          + (minInclusive ? "[" : "(")
          + format(min)
          + ", "
          + format(max)
          + (maxInclusive ? "]" : ")");
    }

    private String format(double d) {
      return BigDecimal.valueOf(d).stripTrailingZeros().toPlainString();
    }
  }

  public static final Bound EPOCHS =
      integer("hyperparameters.epochs", EPOCHS_MIN, EPOCHS_MAX, EPOCHS_DEFAULT);
  public static final Bound MAX_STEPS = integer("hyperparameters.maxSteps", MAX_STEPS_MIN, null);
  public static final Bound LEARNING_RATE =
      new Bound(
          "hyperparameters.learningRate",
          LEARNING_RATE_MIN_EXCLUSIVE,
          false,
          LEARNING_RATE_MAX,
          true,
          LEARNING_RATE_DEFAULT,
          false);
  public static final Bound BATCH_SIZE =
      integer("hyperparameters.batchSize", BATCH_SIZE_MIN, BATCH_SIZE_MAX, BATCH_SIZE_DEFAULT);
  public static final Bound GRADIENT_ACCUMULATION =
      integer(
          "hyperparameters.gradientAccumulation",
          GRADIENT_ACCUMULATION_MIN,
          GRADIENT_ACCUMULATION_MAX,
          GRADIENT_ACCUMULATION_DEFAULT);
  public static final Bound MAX_SEQUENCE_LENGTH =
      integer(
          "hyperparameters.maxSequenceLength",
          MAX_SEQUENCE_LENGTH_MIN,
          MAX_SEQUENCE_LENGTH_MAX,
          MAX_SEQUENCE_LENGTH_DEFAULT);
  public static final Bound WARMUP_STEPS =
      integer("hyperparameters.warmupSteps", WARMUP_STEPS_MIN, WARMUP_STEPS_DEFAULT);
  public static final Bound WEIGHT_DECAY =
      new Bound(
          "hyperparameters.weightDecay",
          WEIGHT_DECAY_MIN,
          true,
          WEIGHT_DECAY_MAX,
          true,
          WEIGHT_DECAY_DEFAULT,
          false);
  public static final Bound MAX_GRAD_NORM =
      new Bound(
          "hyperparameters.maxGradNorm",
          MAX_GRAD_NORM_MIN,
          true,
          Double.POSITIVE_INFINITY,
          true,
          MAX_GRAD_NORM_DEFAULT,
          false);
  public static final Bound SEED =
      new Bound(
          "hyperparameters.seed",
          SEED_MIN,
          true,
          Double.POSITIVE_INFINITY,
          true,
          SEED_DEFAULT,
          true);
  public static final Bound EVAL_EVERY_STEPS =
      integer("hyperparameters.evalEverySteps", EVAL_EVERY_STEPS_MIN, EVAL_EVERY_STEPS_DEFAULT);
  public static final Bound PATIENCE =
      integer("hyperparameters.earlyStopping.patience", PATIENCE_MIN, PATIENCE_MAX, null);
  public static final Bound LORA_RANK =
      integer("method.lora.rank", LORA_RANK_MIN, LORA_RANK_MAX, LORA_RANK_DEFAULT);
  public static final Bound LORA_ALPHA =
      new Bound(
          "method.lora.alpha",
          LORA_ALPHA_MIN_EXCLUSIVE,
          false,
          LORA_ALPHA_MAX,
          true,
          LORA_ALPHA_DEFAULT,
          false);
  public static final Bound LORA_DROPOUT =
      new Bound(
          "method.lora.dropout",
          LORA_DROPOUT_MIN,
          true,
          LORA_DROPOUT_MAX,
          true,
          LORA_DROPOUT_DEFAULT,
          false);
  public static final Bound TRAINABLE_LAYERS =
      integer("method.freeze.trainableLayers", TRAINABLE_LAYERS_MIN, TRAINABLE_LAYERS_MAX, null);
  public static final Bound VALIDATION_SPLIT =
      new Bound(
          "dataset.validationSplit",
          VALIDATION_SPLIT_MIN,
          true,
          VALIDATION_SPLIT_MAX,
          true,
          null,
          false);
  public static final Bound CHECKPOINT_EVERY_STEPS =
      integer("checkpoints.everySteps", CHECKPOINT_EVERY_STEPS_MIN, CHECKPOINT_EVERY_STEPS_DEFAULT);
  public static final Bound KEEP_LAST =
      integer("checkpoints.keepLast", KEEP_LAST_MIN, KEEP_LAST_MAX, KEEP_LAST_DEFAULT);
  public static final Bound GENERATION_MAX_EXAMPLES =
      integer(
          "evaluation.generation.maxExamples",
          GENERATION_MAX_EXAMPLES_MIN,
          GENERATION_MAX_EXAMPLES_MAX,
          GENERATION_MAX_EXAMPLES_DEFAULT);
  public static final Bound GENERATION_MAX_NEW_TOKENS =
      integer(
          "evaluation.generation.maxNewTokens",
          GENERATION_MAX_NEW_TOKENS_MIN,
          GENERATION_MAX_NEW_TOKENS_MAX,
          GENERATION_MAX_NEW_TOKENS_DEFAULT);
  public static final Bound BACKOFF_LIMIT =
      integer("backoffLimit", BACKOFF_LIMIT_MIN, BACKOFF_LIMIT_MAX, BACKOFF_LIMIT_DEFAULT);
  public static final Bound GPUS = integer("resources.gpus", GPUS_MIN, GPUS_MAX, null);
  public static final Bound REPLICAS =
      integer("serving.replicas", REPLICAS_MIN, REPLICAS_MAX, REPLICAS_DEFAULT);
  public static final Bound CANARY_WEIGHT =
      integer("serving.canary.weight", CANARY_WEIGHT_MIN, CANARY_WEIGHT_MAX, CANARY_WEIGHT_DEFAULT);
  public static final Bound CANARY_MAX_ERROR_RATE =
      new Bound(
          "serving.canary.maxErrorRate",
          CANARY_MAX_ERROR_RATE_MIN,
          true,
          CANARY_MAX_ERROR_RATE_MAX,
          true,
          CANARY_MAX_ERROR_RATE_DEFAULT,
          false);

  /** Every bound, in spec order. */
  public static final List<Bound> ALL =
      List.of(
          EPOCHS,
          MAX_STEPS,
          LEARNING_RATE,
          BATCH_SIZE,
          GRADIENT_ACCUMULATION,
          MAX_SEQUENCE_LENGTH,
          WARMUP_STEPS,
          WEIGHT_DECAY,
          MAX_GRAD_NORM,
          SEED,
          EVAL_EVERY_STEPS,
          PATIENCE,
          LORA_RANK,
          LORA_ALPHA,
          LORA_DROPOUT,
          TRAINABLE_LAYERS,
          VALIDATION_SPLIT,
          CHECKPOINT_EVERY_STEPS,
          KEEP_LAST,
          GENERATION_MAX_EXAMPLES,
          GENERATION_MAX_NEW_TOKENS,
          BACKOFF_LIMIT,
          GPUS,
          REPLICAS,
          CANARY_WEIGHT,
          CANARY_MAX_ERROR_RATE);

  /**
   * A value out of its bound.
   *
   * @param field path below {@code spec} (FineTuneJob) or the document root (trainer config)
   */
  public record Violation(String field, Number value, String problem, String fix) {
    @Override
    public String toString() {
      return field + " " + problem + "; " + fix;
    }
  }

  /**
   * Every value of {@code root} that is outside its bound. {@code root} is a FineTuneJob's spec or
   * a trainer config as a JSON tree (both use the same paths); absent fields are not checked. A
   * value that is not a number is reported too, for hand-written trainer configs.
   */
  public static List<Violation> check(JsonNode root) {
    List<Violation> violations = new ArrayList<>();
    for (Bound bound : ALL) {
      JsonNode node = root.at("/" + bound.field().replace('.', '/'));
      if (node.isMissingNode() || node.isNull()) {
        continue;
      }
      if (!node.isNumber() || (bound.integral() && !node.canConvertToExactIntegral())) {
        violations.add(
            new Violation(
                bound.field(),
                null,
                "is '" + node.asText() + "', not a number",
                "use " + bound.range()));
        continue;
      }
      Number value = bound.integral() ? node.longValue() : node.numberValue();
      bound
          .problem(value)
          .ifPresent(
              p ->
                  violations.add(
                      new Violation(bound.field(), value, "is " + value, "use " + bound.range())));
    }
    return violations;
  }

  private static Bound integer(String field, long min, long max, Integer defaultValue) {
    return new Bound(field, min, true, max, true, defaultValue, true);
  }

  private static Bound integer(String field, long min, Integer defaultValue) {
    return new Bound(field, min, true, Double.POSITIVE_INFINITY, true, defaultValue, true);
  }
}
