package io.kubetune.trainer.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.kubetune.api.v1alpha1.HyperparametersSpec.Precision;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.data.ChatTemplate;
import io.kubetune.trainer.data.DataOrder;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.data.Example;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.TextTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The loading half of a run (DJL's "arguments → model, dataset"): the base model, its tokenizer,
 * the tokenized train and validation examples, and the trainable arrays chosen by the method, all
 * under one root manager that {@link #close} releases. Loading seeds the engine and draws the LoRA
 * and classifier-head initialisation in a fixed order, so a run is reproducible from its seed.
 */
final class TrainingSetup implements AutoCloseable {
  final TrainingOptions options;
  final NDManager root;
  final LlamaModel model;
  final TextTokenizer tokenizer;
  final List<Example> trainExamples;
  final List<Example> validationExamples;

  /**
   * The validation records as generation tasks (prompt and expected answer), for completion and
   * chat data; empty for classification.
   */
  final List<JsonlDataset.GenerationCase> validationCases;

  /** Class labels in head order (classification), else null. */
  final List<String> labels;

  final long padId;

  /** BOS/EOS as the dataset added them; the export's tokenizer files must add the same. */
  final JsonlDataset.SpecialTokens special;

  /** Trainable arrays by the name they are saved and optimised under. */
  final Map<String, NDArray> trainable = new LinkedHashMap<>();

  /** The sequence-classification head (part of {@link #trainable}), or null. */
  NDArray classifierHead;

  private TrainingSetup(
      TrainingOptions options,
      NDManager root,
      LlamaModel model,
      TextTokenizer tokenizer,
      JsonlDataset.SpecialTokens special,
      List<String> labels,
      List<Example> trainExamples,
      List<Example> validationExamples,
      List<JsonlDataset.GenerationCase> validationCases) {
    this.options = options;
    this.root = root;
    this.model = model;
    this.tokenizer = tokenizer;
    this.special = special;
    // Padding sits after each example's end and carries no loss; EOS is a token every model has.
    this.padId = special.eos();
    this.labels = labels;
    this.trainExamples = trainExamples;
    this.validationExamples = validationExamples;
    this.validationCases = validationCases;
  }

  /** Loads everything {@code options} names; a bad input is refused naming its field. */
  static TrainingSetup load(TrainingOptions options, ProgressReporter progress) {
    checkPrecision(options.method(), options.precision());
    requireExists(options.baseModel(), "baseModel.uri");
    requireExists(options.train(), "dataset.train");
    if (options.validation() != null) {
      requireExists(options.validation(), "dataset.validation");
    }
    Engine.getInstance().setRandomSeed((int) options.seed());
    NDManager root = NDManager.newBaseManager();
    try {
      LlamaModel model = LlamaModel.load(options.baseModel(), root);
      progress.emit(model.loadReport().event(model.config()));
      EngineThreads.tuneFor(model.config());
      TextTokenizer tokenizer = TextTokenizer.load(options.baseModel());
      LlamaConfig config = model.config();
      if (options.maxSequenceLength() > config.maxPositionEmbeddings()) {
        throw new BadInputException(
            "hyperparameters.maxSequenceLength "
                + options.maxSequenceLength()
                + " exceeds the model's max_position_embeddings "
                + config.maxPositionEmbeddings());
      }
      JsonlDataset.SpecialTokens special = JsonlDataset.SpecialTokens.of(tokenizer.settings());
      JsonlDataset dataset =
          new JsonlDataset(
              options.format(),
              options.fields(),
              tokenizer,
              special,
              ChatTemplate.of(tokenizer.settings()),
              options.maxSequenceLength());
      List<JsonlDataset.Line> trainLines = JsonlDataset.readLines(options.train());
      List<JsonlDataset.Line> validationLines = List.of();
      if (options.validation() != null) {
        validationLines = JsonlDataset.readLines(options.validation(), "dataset.validation");
      } else if (options.validationSplit() != null) {
        int[][] split =
            DataOrder.split(options.seed(), trainLines.size(), options.validationSplit());
        List<JsonlDataset.Line> all = trainLines;
        trainLines = pick(all, split[0]);
        validationLines = pick(all, split[1]);
      }
      List<String> labels = null;
      if (options.format() == DatasetFormat.CLASSIFICATION) {
        labels =
            options.labels() != null && !options.labels().isEmpty()
                ? List.copyOf(options.labels())
                : dataset.labelsIn(options.train(), trainLines);
        if (labels.size() < 2) {
          throw new BadInputException(
              "classification needs at least 2 labels, found " + labels + " in " + options.train());
        }
      }
      List<Example> trainExamples = dataset.tokenize(options.train(), trainLines, labels);
      Path validationFile = options.validation() != null ? options.validation() : options.train();
      List<Example> validationExamples = dataset.tokenize(validationFile, validationLines, labels);
      List<JsonlDataset.GenerationCase> validationCases =
          options.format() == DatasetFormat.CLASSIFICATION
              ? List.of()
              : dataset.generationCases(validationFile, validationLines);
      TrainingSetup setup =
          new TrainingSetup(
              options,
              root,
              model,
              tokenizer,
              special,
              labels,
              trainExamples,
              validationExamples,
              validationCases);
      setup.selectTrainable();
      return setup;
    } catch (RuntimeException e) {
      root.close();
      throw e;
    }
  }

  /**
   * bf16 applies to frozen weights only; full fine-tuning freezes none, so it would silently train
   * in fp32: refused instead.
   */
  static void checkPrecision(TrainingMethod method, Precision precision) {
    if (precision == Precision.bf16 && method == TrainingMethod.FULL) {
      throw new BadInputException(
          "hyperparameters.precision bf16 keeps the frozen base weights in bf16, and method Full"
              + " trains (and keeps in fp32) every weight, so nothing would change: use precision"
              + " fp32 with method Full, or method LoRA or FreezeLayers with bf16");
    }
  }

  private static void requireExists(Path path, String field) {
    if (path == null || !Files.exists(path)) {
      throw new BadInputException(path + " does not exist; check " + field);
    }
  }

  private static List<JsonlDataset.Line> pick(List<JsonlDataset.Line> lines, int[] indices) {
    List<JsonlDataset.Line> picked = new ArrayList<>(indices.length);
    for (int i : indices) {
      picked.add(lines.get(i));
    }
    return picked;
  }

  /** Chooses the trainable arrays for the method and turns on their gradients. */
  private void selectTrainable() {
    LlamaConfig config = model.config();
    switch (options.method()) {
      case LORA -> {
        LoraAdapter adapter =
            LoraAdapter.create(
                model,
                options.loraRank(),
                options.loraAlpha(),
                options.loraDropout(),
                options.loraTargetModules(),
                options.seed());
        model.setAdapter(adapter);
        trainable.putAll(adapter.peftTensors());
      }
      case FULL -> trainable.putAll(model.weights());
      case FREEZE_LAYERS -> {
        if (options.trainableLayers() > config.numHiddenLayers()) {
          throw new BadInputException(
              "method.freeze.trainableLayers "
                  + options.trainableLayers()
                  + " exceeds the model's "
                  + config.numHiddenLayers()
                  + " layers");
        }
        for (String name : model.topLayerWeights(options.trainableLayers())) {
          trainable.put(name, model.weights().get(name));
        }
        trainable.put(LlamaModel.FINAL_NORM, model.weights().get(LlamaModel.FINAL_NORM));
        if (options.format() != DatasetFormat.CLASSIFICATION) {
          String head = config.tieWordEmbeddings() ? LlamaModel.EMBED : LlamaModel.LM_HEAD;
          trainable.put(head, model.weights().get(head));
        }
      }
    }
    if (labels != null) {
      // LlamaForSequenceClassification's head, initialised like transformers (N(0, 0.02)).
      Random random = new Random(options.seed() + 17);
      float[] values = new float[labels.size() * config.hiddenSize()];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (random.nextGaussian() * 0.02);
      }
      classifierHead =
          model.manager().create(values, new Shape(labels.size(), config.hiddenSize()));
      trainable.put(LlamaModel.SCORE, classifierHead);
    }
    trainable.values().forEach(a -> a.setRequiresGradient(true));
    if (options.precision() == Precision.bf16) {
      model.convertFrozenToBf16(trainable::containsKey);
    }
    model.fuseFrozenProjections(trainable::containsKey);
  }

  /** Optimizer steps the run plans: maxSteps, or epochs over the micro-batches. */
  long plannedSteps() {
    if (options.maxSteps() != null) {
      return options.maxSteps();
    }
    DataOrder order = new DataOrder(options.seed(), trainExamples.size(), options.batchSize());
    long microBatches = (long) order.batchesPerEpoch() * options.epochs();
    return Math.max(1, microBatches / options.gradientAccumulation());
  }

  /** The loss the loop minimises and the evaluation measures, over this run's head. */
  TrainingLoss loss() {
    return new TrainingLoss(model, classifierHead);
  }

  @Override
  public void close() {
    tokenizer.close();
    root.close();
  }
}
