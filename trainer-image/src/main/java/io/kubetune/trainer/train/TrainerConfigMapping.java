package io.kubetune.trainer.train;

import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import io.kubetune.api.Bounds;
import io.kubetune.api.InvalidFieldException;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.CheckpointsSpec;
import io.kubetune.api.v1alpha1.DatasetFields;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.GenerationEvalSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.storage.StorageSettings;
import io.kubetune.trainer.storage.StorageUri;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.function.Function;

/**
 * Maps the operator's {@link TrainerConfig} onto {@link TrainingOptions}. The operator resolves
 * defaults, but the trainer applies the API's documented defaults again so a hand-written config
 * works too.
 */
public final class TrainerConfigMapping {
  private TrainerConfigMapping() {}

  private static final ObjectMapper TREE = new ObjectMapper();

  /**
   * Local paths for {@code file://} URIs and plain paths. Object storage ({@code s3://}) needs the
   * storage layer of issue 4 and is reported as bad input until then.
   */
  public static Path localPath(String uri) {
    if (uri == null || uri.isBlank()) {
      return null;
    }
    if (uri.startsWith("file:")) {
      return Paths.get(URI.create(uri));
    }
    if (uri.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) {
      throw new BadInputException(
          "URI "
              + uri
              + " is not supported by this trainer build; use file:// or a mounted path (pvc://)");
    }
    return Paths.get(uri);
  }

  /**
   * Parses a trainer config file. A value outside an enum's set ({@code hyperparameters.precision:
   * fp16}) is refused naming the field and the accepted values, instead of Jackson's message about
   * Java classes.
   */
  public static TrainerConfig read(Path file) {
    try {
      return TREE.readValue(file.toFile(), TrainerConfig.class);
    } catch (InvalidFormatException e) {
      if (e.getTargetType() != null && e.getTargetType().isEnum()) {
        StringBuilder field = new StringBuilder();
        for (JsonMappingException.Reference ref : e.getPath()) {
          if (ref.getFieldName() != null) {
            field.append(field.isEmpty() ? "" : ".").append(ref.getFieldName());
          } else {
            field.append('[').append(ref.getIndex()).append(']');
          }
        }
        List<String> accepted =
            java.util.Arrays.stream(e.getTargetType().getEnumConstants())
                .map(c -> TREE.convertValue(c, String.class))
                .toList();
        throw new BadInputException(
            "trainer config "
                + field
                + " is '"
                + e.getValue()
                + "'; use one of "
                + String.join(", ", accepted),
            e);
      }
      throw cannotRead(file, e);
    } catch (IOException e) {
      throw cannotRead(file, e);
    }
  }

  private static BadInputException cannotRead(Path file, IOException e) {
    return new BadInputException(
        "cannot read trainer config "
            + file
            + ": "
            + e.getClass().getSimpleName()
            + ": "
            + String.valueOf(e.getMessage()).replace('\n', ' '),
        e);
  }

  public static TrainingOptions toOptions(TrainerConfig config) {
    return toOptions(config, TrainerConfigMapping::localPath);
  }

  public static TrainingOptions toOptions(TrainerConfig config, Function<String, Path> resolve) {
    if (!TrainerConfig.API_VERSION.equals(config.apiVersion)) {
      throw new BadInputException(
          "trainer config apiVersion '"
              + config.apiVersion
              + "' is not supported; expected "
              + TrainerConfig.API_VERSION
              + " (use a trainer image matching the operator)");
    }
    require(config.baseModel != null && config.baseModel.uri != null, "baseModel.uri");
    require(config.dataset != null && config.dataset.train != null, "dataset.train");
    require(config.dataset.format != null, "dataset.format");
    require(config.method != null && config.method.type != null, "method.type");
    require(config.output != null && config.output.uri != null, "output.uri");
    checkBounds(config);
    HyperparametersSpec hp =
        config.hyperparameters != null ? config.hyperparameters : new HyperparametersSpec();

    DatasetFormat format = DatasetFormat.valueOf(config.dataset.format.name().toUpperCase());
    TrainingMethod method =
        switch (config.method.type) {
          case LoRA -> TrainingMethod.LORA;
          case Full -> TrainingMethod.FULL;
          case FreezeLayers -> TrainingMethod.FREEZE_LAYERS;
        };
    LoraSpec lora = config.method.lora != null ? config.method.lora : new LoraSpec();
    int trainableLayers = 0;
    if (method == TrainingMethod.FREEZE_LAYERS) {
      require(
          config.method.freeze != null && config.method.freeze.trainableLayers != null,
          "method.freeze.trainableLayers");
      trainableLayers = config.method.freeze.trainableLayers;
    }

    EvalMetric metric =
        hp.earlyStopping != null && hp.earlyStopping.metric != null
            ? hp.earlyStopping.metric
            : config.evaluation != null && config.evaluation.metric != null
                ? config.evaluation.metric
                : EvalMetric.EVAL_LOSS;
    if (metric.classificationOnly() && format != DatasetFormat.CLASSIFICATION) {
      throw new BadInputException(
          "evaluation metric "
              + metric.key()
              + " needs dataset.format classification; use eval_loss or perplexity");
    }
    GenerationEvalSpec generation = config.evaluation == null ? null : config.evaluation.generation;
    int generationMaxExamples =
        generation == null || generation.maxExamples == null ? 0 : generation.maxExamples;
    int generationMaxNewTokens =
        generation == null || generation.maxNewTokens == null
            ? Bounds.GENERATION_MAX_NEW_TOKENS_DEFAULT
            : generation.maxNewTokens;
    if (generationMaxExamples > 0 && format == DatasetFormat.CLASSIFICATION) {
      throw new BadInputException(
          "evaluation.generation is for completion and chat datasets, this one is"
              + " classification; drop evaluation.generation");
    }
    if (metric.generationOnly() && format == DatasetFormat.CLASSIFICATION) {
      throw new BadInputException(
          "evaluation metric "
              + metric.key()
              + " needs dataset.format completion or chat; use accuracy, f1, precision, recall,"
              + " eval_loss or perplexity");
    }
    if (metric.generationOnly() && generationMaxExamples == 0) {
      throw new BadInputException(
          "evaluation metric "
              + metric.key()
              + " needs generation metrics: set evaluation.generation.maxExamples to at least 1");
    }
    boolean exportBest =
        config.checkpoints != null && Boolean.TRUE.equals(config.checkpoints.exportBest);
    if (exportBest && (config.checkpoints.uri == null || config.checkpoints.uri.isBlank())) {
      throw new BadInputException(
          "checkpoints.exportBest exports the best checkpoint: set checkpoints.uri");
    }

    DatasetFields f = config.dataset.fields;
    JsonlDataset.Fields d = JsonlDataset.Fields.DEFAULT;
    JsonlDataset.Fields fields =
        f == null
            ? d
            : new JsonlDataset.Fields(
                or(f.prompt, d.prompt()),
                or(f.completion, d.completion()),
                or(f.messages, d.messages()),
                or(f.text, d.text()),
                or(f.label, d.label()));

    return new TrainingOptions(
        resolve.apply(config.baseModel.uri),
        config.baseModel.uri,
        resolve.apply(config.dataset.train),
        config.dataset.validation == null ? null : resolve.apply(config.dataset.validation),
        config.dataset.validationSplit,
        format,
        config.dataset.labels == null ? null : List.copyOf(config.dataset.labels),
        fields,
        method,
        or(lora.rank, LoraSpec.DEFAULT_RANK),
        or(lora.alpha, LoraSpec.DEFAULT_ALPHA),
        or(lora.dropout, LoraSpec.DEFAULT_DROPOUT),
        lora.targetModules == null ? LoraSpec.DEFAULT_TARGET_MODULES : lora.targetModules,
        trainableLayers,
        or(hp.epochs, HyperparametersSpec.DEFAULT_EPOCHS),
        hp.maxSteps,
        or(hp.learningRate, HyperparametersSpec.DEFAULT_LEARNING_RATE),
        or(hp.batchSize, HyperparametersSpec.DEFAULT_BATCH_SIZE),
        or(hp.gradientAccumulation, HyperparametersSpec.DEFAULT_GRADIENT_ACCUMULATION),
        or(hp.maxSequenceLength, HyperparametersSpec.DEFAULT_MAX_SEQUENCE_LENGTH),
        or(hp.warmupSteps, HyperparametersSpec.DEFAULT_WARMUP_STEPS),
        or(hp.weightDecay, HyperparametersSpec.DEFAULT_WEIGHT_DECAY),
        or(hp.maxGradNorm, HyperparametersSpec.DEFAULT_MAX_GRAD_NORM),
        or(hp.seed, HyperparametersSpec.DEFAULT_SEED),
        or(hp.evalEverySteps, HyperparametersSpec.DEFAULT_EVAL_EVERY_STEPS),
        hp.earlyStopping == null || hp.earlyStopping.patience == null
            ? 0
            : hp.earlyStopping.patience,
        metric.key(),
        metric.higherIsBetter(),
        generationMaxExamples,
        generationMaxNewTokens,
        exportBest,
        Boolean.TRUE.equals(hp.gradientCheckpointing),
        or(hp.precision, HyperparametersSpec.DEFAULT_PRECISION),
        resolve.apply(config.output.uri));
  }

  /**
   * Refuses values outside the API's bounds (the table the CRD and the operator's validator use),
   * naming every such field: a hand-written config or an API server without the CRD's schema must
   * not get {@code gradientAccumulation: 0} or {@code dropout: 1.0} trained and reported as
   * success.
   */
  public static void checkBounds(TrainerConfig config) {
    List<Bounds.Violation> outOfBounds = Bounds.check(TREE.valueToTree(config));
    if (!outOfBounds.isEmpty()) {
      throw new BadInputException(
          "trainer config: "
              + String.join("; ", outOfBounds.stream().map(Bounds.Violation::toString).toList()));
    }
    if (config.method != null
        && config.method.type == MethodSpec.Type.Full
        && config.hyperparameters != null) {
      TrainingSetup.checkPrecision(TrainingMethod.FULL, config.hyperparameters.precision);
    }
    try {
      if (config.baseModel != null) {
        checkUri("baseModel.uri", config.baseModel.uri);
      }
      if (config.dataset != null) {
        checkUri("dataset.train", config.dataset.train);
        checkUri("dataset.validation", config.dataset.validation);
      }
      if (config.checkpoints != null) {
        checkUri("checkpoints.uri", config.checkpoints.uri);
      }
      if (config.output != null) {
        checkUri("output.uri", config.output.uri);
      }
      if (config.storage != null) {
        io.kubetune.api.StorageUri.checkEndpoint("storage.endpoint", config.storage.endpoint);
      }
    } catch (InvalidFieldException e) {
      throw new BadInputException("trainer config " + e.getMessage(), e);
    }
  }

  /** The shared syntax rules (no control character, valid %-escapes), then this trainer's forms. */
  private static void checkUri(String field, String uri) {
    if (uri == null) {
      return;
    }
    io.kubetune.api.StorageUri.checkSyntax(field, uri);
    if (uri.contains("://")) {
      try {
        StorageUri.parse(uri);
      } catch (IllegalArgumentException e) {
        throw new InvalidFieldException(field, e.getMessage(), "see docs/trainer-config.md");
      }
    }
  }

  /** Revision used when a hand-written config has no {@code job.trainingRevision}. */
  public static final String UNVERSIONED = "unversioned";

  /**
   * Checkpoint settings from {@code checkpoints} and {@code job.trainingRevision}, or null when the
   * config has no checkpoints URI or one this trainer cannot write to ({@code pvc://} without a
   * mount path): training then runs without checkpoints, as before, and says so on stderr.
   */
  public static CheckpointOptions checkpointOptions(TrainerConfig config) {
    CheckpointsSpec spec = config.checkpoints;
    if (spec == null || spec.uri == null || spec.uri.isBlank()) {
      return null;
    }
    String uri = spec.uri;
    if (!uri.contains("://") && !uri.startsWith("file:")) {
      uri = Paths.get(uri).toAbsolutePath().toUri().toString(); // a plain local path
    }
    try {
      StorageUri.parse(uri);
    } catch (IllegalArgumentException e) {
      System.err.println("checkpoints disabled: " + e.getMessage());
      return null;
    }
    String revision =
        config.job != null
                && config.job.trainingRevision != null
                && !config.job.trainingRevision.isBlank()
            ? config.job.trainingRevision
            : UNVERSIONED;
    CheckpointOwner owner =
        config.job != null && config.job.uid != null && !config.job.uid.isBlank()
            ? new CheckpointOwner(config.job.namespace, config.job.name, config.job.uid)
            : null;
    return new CheckpointOptions(
        uri,
        or(spec.everySteps, CheckpointsSpec.DEFAULT_EVERY_STEPS),
        or(spec.keepLast, CheckpointsSpec.DEFAULT_KEEP_LAST),
        revision,
        StorageSettings.from(config.storage),
        owner);
  }

  private static void require(boolean present, String field) {
    if (!present) {
      throw new BadInputException("trainer config lacks " + field);
    }
  }

  private static <T> T or(T value, T fallback) {
    return value != null ? value : fallback;
  }
}
