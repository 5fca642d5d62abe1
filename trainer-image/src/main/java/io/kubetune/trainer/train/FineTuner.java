package io.kubetune.trainer.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.StorageFullException;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.checkpoint.Skipped;
import io.kubetune.trainer.data.ChatTemplate;
import io.kubetune.trainer.data.DataOrder;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.data.Example;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.safetensors.Safetensors;
import io.kubetune.trainer.storage.ObjectStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * One fine-tuning run: load model and data, train with AdamW under a warmup+cosine schedule,
 * evaluate, stop early, and export. Every array created by a step lives in that step's child
 * manager, so native memory stays flat over long runs.
 */
public final class FineTuner implements AutoCloseable {

  /** One evaluation: metric key to value (eval_loss, perplexity, accuracy, f1, ...). */
  public record Evaluation(long step, double epoch, Map<String, Double> metrics) {}

  /** What a finished run reports (also written to metrics.json). */
  public record Result(
      long steps,
      long plannedSteps,
      boolean stoppedEarly,
      List<Evaluation> history,
      Evaluation initial,
      Evaluation last,
      Evaluation best,
      /** Per optimizer step: {step, loss, seconds since start, tokens since start}. */
      List<double[]> trainLoss,
      double tokensPerSecond,
      double seconds,
      long trainableParameters,
      long totalParameters,
      List<String> labels,
      /** Stopped by {@link #requestStop} (SIGTERM) after checkpointing; nothing exported. */
      boolean preempted) {}

  private final TrainingOptions options;
  private final ProgressReporter progress;
  private final NDManager root;
  private final LlamaModel model;
  private final TextTokenizer tokenizer;
  private final List<Example> trainExamples;
  private final List<Example> validationExamples;
  private final List<String> labels;
  private final long padId;

  /** BOS/EOS as the dataset added them; the export's tokenizer files must add the same. */
  private final JsonlDataset.SpecialTokens special;

  /** Trainable arrays by the name they are saved and optimised under. */
  private final Map<String, NDArray> trainable = new LinkedHashMap<>();

  private NDArray classifierHead;

  /** Null: no checkpoints (tests, hand-written configs without {@code checkpoints}). */
  private final CheckpointOptions checkpointOptions;

  /** Test hook: leave the loop after this step without finishing (simulates a crash). */
  private long stopAfterStep = Long.MAX_VALUE;

  /** Set from the SIGTERM handler's thread; read by the loop after each step. */
  private volatile boolean stopRequested;

  /** Step the last run of {@link #train} started from (0, or the resumed checkpoint's step). */
  private long startStep;

  /** Step of the newest checkpoint committed or resumed by this process; -1 if none. */
  private long lastCheckpointStep = -1;

  /** Test hook: wraps the checkpoint object store (to fail or stop it at a chosen call). */
  private UnaryOperator<ObjectStore> checkpointStoreDecorator = UnaryOperator.identity();

  public FineTuner(TrainingOptions options, ProgressReporter progress) {
    this(options, progress, null);
  }

  public FineTuner(
      TrainingOptions options, ProgressReporter progress, CheckpointOptions checkpointOptions) {
    this.options = options;
    this.checkpointOptions = checkpointOptions;
    this.progress = progress;
    requireExists(options.baseModel(), "baseModel.uri");
    requireExists(options.train(), "dataset.train");
    if (options.validation() != null) {
      requireExists(options.validation(), "dataset.validation");
    }
    Engine.getInstance().setRandomSeed((int) options.seed());
    this.root = NDManager.newBaseManager();
    try {
      this.model = LlamaModel.load(options.baseModel(), root);
      progress.emit(model.loadReport().event(model.config()));
      EngineThreads.tuneFor(model.config());
      this.tokenizer = TextTokenizer.load(options.baseModel());
      LlamaConfig config = model.config();
      if (options.maxSequenceLength() > config.maxPositionEmbeddings()) {
        throw new BadInputException(
            "hyperparameters.maxSequenceLength "
                + options.maxSequenceLength()
                + " exceeds the model's max_position_embeddings "
                + config.maxPositionEmbeddings());
      }
      this.special = JsonlDataset.SpecialTokens.of(tokenizer.settings());
      // Padding sits after each example's end and carries no loss; EOS is a token every model has.
      this.padId = special.eos();
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
      if (options.format() == DatasetFormat.CLASSIFICATION) {
        this.labels =
            options.labels() != null && !options.labels().isEmpty()
                ? List.copyOf(options.labels())
                : dataset.labelsIn(options.train(), trainLines);
        if (labels.size() < 2) {
          throw new BadInputException(
              "classification needs at least 2 labels, found " + labels + " in " + options.train());
        }
      } else {
        this.labels = null;
      }
      this.trainExamples = dataset.tokenize(options.train(), trainLines, labels);
      Path validationFile = options.validation() != null ? options.validation() : options.train();
      this.validationExamples = dataset.tokenize(validationFile, validationLines, labels);
      selectTrainable();
    } catch (RuntimeException e) {
      root.close();
      throw e;
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

  public LlamaModel model() {
    return model;
  }

  public Map<String, NDArray> trainable() {
    return trainable;
  }

  public NDArray classifierHead() {
    return classifierHead;
  }

  /** Arrays alive under this run's root manager (for leak tests). */
  public int liveArrays() {
    return root.getManagedArrays().size();
  }

  public List<Example> trainExamples() {
    return trainExamples;
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
  }

  /** Optimizer steps the run plans: maxSteps, or epochs over the micro-batches. */
  public long plannedSteps() {
    if (options.maxSteps() != null) {
      return options.maxSteps();
    }
    DataOrder order = new DataOrder(options.seed(), trainExamples.size(), options.batchSize());
    long microBatches = (long) order.batchesPerEpoch() * options.epochs();
    return Math.max(1, microBatches / options.gradientAccumulation());
  }

  /** Test hook: stop the loop after {@code step} (after its checkpoint), as a crash would. */
  void stopAfterStep(long step) {
    this.stopAfterStep = step;
  }

  /**
   * Asks the loop to finish the current step, write a checkpoint and return a preempted result
   * (SIGTERM). Safe from any thread.
   */
  public void requestStop() {
    stopRequested = true;
  }

  /** The step the last {@link #train} started from: 0, or the step of the resumed checkpoint. */
  public long startStep() {
    return startStep;
  }

  /**
   * The step of the newest checkpoint this process committed or resumed from, or -1: after a
   * preemption, whether the next attempt resumes from the last step or from an older one.
   */
  public long lastCheckpointStep() {
    return lastCheckpointStep;
  }

  /** Test hook: see {@link Checkpointer}'s decorating constructor. */
  void decorateCheckpointStore(UnaryOperator<ObjectStore> decorator) {
    this.checkpointStoreDecorator = decorator;
  }

  public Result train() {
    try (Checkpointer checkpointer =
        checkpointOptions == null
            ? null
            : new Checkpointer(checkpointOptions, System.err, checkpointStoreDecorator)) {
      return train(checkpointer);
    } catch (IOException e) {
      // Storage unreachable at start (restore) beyond the retries: exit 1, the Job retries.
      // Failed checkpoint writes do not end up here (see saveCheckpoint).
      throw new UncheckedIOException("checkpoint storage: " + e.getMessage(), e);
    }
  }

  private Result train(Checkpointer checkpointer) throws IOException {
    long totalSteps = plannedSteps();
    DataOrder order = new DataOrder(options.seed(), trainExamples.size(), options.batchSize());
    LearningRateSchedule schedule =
        new LearningRateSchedule(options.learningRate(), options.warmupSteps(), totalSteps);
    Set<String> noDecay = new HashSet<>();
    trainable.keySet().stream().filter(AdamW::exemptFromDecay).forEach(noDecay::add);
    List<Evaluation> history = new ArrayList<>();
    List<double[]> trainLoss = new ArrayList<>();
    Evaluation initial = null;
    Evaluation best = null;
    int evalsWithoutImprovement = 0;
    boolean stoppedEarly = false;
    boolean preempted = false;
    int checkpointFailures = 0;
    long tokens = 0;
    long step = 0;
    try (AdamW optimizer = new AdamW(root, options.weightDecay(), noDecay)) {
      Checkpointer.Restore restore =
          checkpointer == null
              ? new Checkpointer.Restore(Optional.empty(), List.of())
              : checkpointer.restoreLatest();
      Optional<Checkpointer.Restored> restored = restore.restored();
      if (restored.isPresent()) {
        Checkpointer.Restored r = restored.get();
        Checkpointer.TrainerState state = r.state();
        restoreTensors(r, optimizer);
        step = state.step();
        tokens = state.tokens();
        initial = state.initial();
        best = state.best();
        evalsWithoutImprovement = state.evalsWithoutImprovement();
        stoppedEarly = state.stoppedEarly();
        history.addAll(state.history());
        trainLoss.addAll(state.trainLoss());
        // Data order and LR schedule depend only on (seed, step), so nothing else is needed.
        lastCheckpointStep = step;
        System.err.println("resuming from step " + step + " of " + r.checkpoint().uri());
        progress.emit(
            new TrainerEvent.Resume(
                step,
                r.checkpoint().uri(),
                r.checkpoint().manifest().time(),
                r.checkpoint().metrics(),
                skippedForEvent(restore.skipped())));
      } else {
        if (!damaged(restore.skipped()).isEmpty()) {
          // Every checkpoint was rejected: say so (the run starts over) with the reasons.
          System.err.println(
              "no usable checkpoint at "
                  + checkpointer.options().uri()
                  + ": all "
                  + damaged(restore.skipped()).size()
                  + " were rejected (see above); starting over from step 0");
          progress.emit(
              new TrainerEvent.Resume(0L, null, null, null, skippedForEvent(restore.skipped())));
        }
        if (!validationExamples.isEmpty()) {
          initial = evaluate(0, 0);
          best = initial;
        }
      }
      startStep = step;
      // Times in trainLoss continue across a resume; throughput counts this process only.
      double secondsBefore = trainLoss.isEmpty() ? 0 : trainLoss.get(trainLoss.size() - 1)[2];
      long started = System.nanoTime() - (long) (secondsBefore * 1e9);
      long tokensAtStart = tokens;
      while (step < totalSteps && !stoppedEarly) {
        if (stopRequested && step == startStep) {
          // Nothing trained since the start (or the restored checkpoint): nothing to save.
          preempted = true;
          break;
        }
        long microBatch = step * options.gradientAccumulation();
        List<Batch> batches = new ArrayList<>();
        int targets = 0;
        for (int i = 0; i < options.gradientAccumulation(); i++) {
          Batch batch = Batch.of(trainExamples, order.batch(microBatch + i), padId);
          batches.add(batch);
          targets += batch.targetCount();
          tokens += batch.tokenCount();
        }
        double lr = schedule.at(step);
        // Dropout masks depend only on (seed, step), so a resumed run draws the same ones.
        Engine.getInstance().setRandomSeed(stepSeed(options.seed(), step));
        float loss = 0;
        double gradNorm;
        try (NDManager scope = root.newSubManager()) {
          for (Batch batch : batches) {
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
              // Normalised by the targets of the whole optimizer step, so accumulation over
              // micro-batches equals one large batch.
              NDArray microLoss =
                  negativeLogLikelihood(scope, batch, true, null)
                      .div(LlamaModel.scalar(scope, targets));
              float value = microLoss.getFloat();
              if (!Float.isFinite(value)) {
                throw new LossNotFiniteException(step + 1, value);
              }
              collector.backward(microLoss);
              loss += value;
            }
          }
          gradNorm = applyUpdate(optimizer, lr, scope);
          if (!Double.isFinite(gradNorm)) {
            throw new LossNotFiniteException(step + 1, (float) gradNorm);
          }
        }
        step++;
        double seconds = (System.nanoTime() - started) / 1e9;
        trainLoss.add(new double[] {step, loss, seconds, tokens});
        double thisRun = seconds - secondsBefore;
        double tokensPerSecond = (tokens - tokensAtStart) / thisRun;
        progress.emit(
            new TrainerEvent.Progress(
                step,
                totalSteps,
                round(order.epochOf(step * options.gradientAccumulation())),
                round(loss),
                lr,
                round(gradNorm),
                round(tokensPerSecond),
                round(thisRun / (step - startStep) * (totalSteps - step))));

        boolean evalDue = step % options.evalEverySteps() == 0 || step == totalSteps;
        Evaluation evaluation = null;
        if (!validationExamples.isEmpty() && evalDue) {
          evaluation = evaluate(step, order.epochOf(step * options.gradientAccumulation()));
          history.add(evaluation);
          if (improves(evaluation, best)) {
            best = evaluation;
            evalsWithoutImprovement = 0;
          } else {
            evalsWithoutImprovement++;
          }
          if (options.earlyStoppingPatience() > 0
              && evalsWithoutImprovement >= options.earlyStoppingPatience()) {
            stoppedEarly = true;
          }
        }
        boolean stopNow = stopRequested;
        boolean checkpointDue =
            step % checkpointEvery(checkpointer) == 0
                || step == totalSteps
                || stoppedEarly
                || stopNow;
        if (checkpointer != null && checkpointDue) {
          Checkpointer.TrainerState state =
              new Checkpointer.TrainerState(
                  step,
                  optimizer.step(),
                  round(order.epochOf(step * options.gradientAccumulation())),
                  options.seed(),
                  tokens,
                  initial,
                  best,
                  evalsWithoutImprovement,
                  stoppedEarly,
                  history,
                  trainLoss);
          Evaluation latest = history.isEmpty() ? null : history.get(history.size() - 1);
          // Only an evaluation of these very weights ranks the checkpoint: a SIGTERM checkpoint
          // at step 130 must not inherit step 100's metrics and win "best" with unevaluated
          // weights (retention and the operator's bestCheckpoint both rank by these).
          Map<String, Double> evaluated =
              latest != null && latest.step() == step ? latest.metrics() : Map.of();
          checkpointFailures =
              saveCheckpoint(
                  checkpointer,
                  state,
                  optimizer,
                  evaluated,
                  checkpointFailures,
                  step < totalSteps && !stoppedEarly && !stopNow);
        }
        if (stopNow && step < totalSteps && !stoppedEarly) {
          preempted = true;
          break;
        }
        if (step >= stopAfterStep) {
          break;
        }
      }
    }
    double seconds = trainLoss.isEmpty() ? 0 : trainLoss.get(trainLoss.size() - 1)[2];
    Evaluation last = history.isEmpty() ? null : history.get(history.size() - 1);
    long total = model.config().parameterCount();
    long trainableCount = 0;
    for (NDArray a : trainable.values()) {
      trainableCount += a.getShape().size();
    }
    return new Result(
        step,
        totalSteps,
        stoppedEarly,
        history,
        initial,
        last,
        best,
        trainLoss,
        seconds > 0 ? tokens / seconds : 0,
        seconds,
        trainableCount,
        total,
        labels,
        preempted);
  }

  /**
   * A {@code checkpoint} or {@code resume} line: step, URI, commit time and the metrics recorded in
   * the manifest (those the retention ranks by), so the operator's status ledger needs no storage
   * access.
   */
  /**
   * Commits a checkpoint; a failure (storage down beyond its retries, disk full) is reported as a
   * {@code warning} event and training goes on: the next interval tries again, and losing a
   * checkpoint costs at most the steps until the next one, while ending the run would lose all
   * steps since the previous one. Returns the consecutive failures so far (0 after a commit).
   */
  private int saveCheckpoint(
      Checkpointer checkpointer,
      Checkpointer.TrainerState state,
      AdamW optimizer,
      Map<String, Double> metrics,
      int failuresBefore,
      boolean moreToCome) {
    long step = state.step();
    try {
      String uri =
          checkpointer.save(
              state,
              trainable,
              optimizer,
              metrics,
              options.metric(),
              options.metricHigherIsBetter());
      if (uri != null) {
        lastCheckpointStep = step;
        progress.emit(
            new TrainerEvent.Checkpoint(
                step, uri, Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(), metrics));
      }
      return 0;
    } catch (IOException e) {
      String message = e.getMessage() == null ? e.toString() : e.getMessage();
      if (StorageFullException.noSpaceIn(e)) {
        // Unlike an outage, a full volume does not heal by itself, and the export (below
        // checkpoints.uri on the same volume) would fail the same way after training on.
        throw new StorageFullException(
            "checkpoints.uri "
                + checkpointer.options().uri()
                + ": no space left while writing the checkpoint of step "
                + step
                + " ("
                + message
                + "); free space on the volume, give the job a larger one, or lower"
                + " checkpoints.keepLast",
            e);
      }
      int failures = failuresBefore + 1;
      String next =
          moreToCome
              ? "training goes on; the next checkpoint is tried at step "
                  + nextCheckpointStep(step, checkpointer)
              : "training goes on";
      System.err.println(
          "warning: checkpoint of step "
              + step
              + " failed ("
              + failures
              + " in a row; "
              + next
              + "; the last committed one stays in force): "
              + message);
      progress.emit(
          new TrainerEvent.Warning(
              TrainerEvent.Warning.CHECKPOINT_FAILED,
              step,
              (long) failures,
              lastCheckpointStep,
              message));
      return failures;
    }
  }

  private static long nextCheckpointStep(long step, Checkpointer checkpointer) {
    long every = checkpointer.options().everySteps();
    return (step / every + 1) * every;
  }

  /**
   * Skipped folders that were damaged or partial; folders of a superseded training revision are
   * expected after a restart and stay out of the {@code resume} event (stderr still lists them).
   */
  private static List<Skipped> damaged(List<Skipped> skipped) {
    return skipped.stream()
        .filter(s -> !s.reason().startsWith(CheckpointStore.OTHER_REVISION))
        .toList();
  }

  /** {@code resume}'s {@code skipped}: each rejected checkpoint's step, URI and reason. */
  private static List<TrainerEvent.Skipped> skippedForEvent(List<Skipped> skipped) {
    return damaged(skipped).stream()
        .map(s -> new TrainerEvent.Skipped(s.step(), s.uri(), s.reason()))
        .toList();
  }

  /**
   * The engine seed for optimizer step {@code step} (0-based): a SplitMix64 mix of (seed, step), so
   * dropout masks do not depend on how many steps this process ran before.
   */
  static int stepSeed(long seed, long step) {
    long z = seed * 0x9E3779B97F4A7C15L + step + 0x632BE59BD9B4E019L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    z = z ^ (z >>> 31);
    return (int) (z ^ (z >>> 32));
  }

  private static long checkpointEvery(Checkpointer checkpointer) {
    return checkpointer == null ? Long.MAX_VALUE : checkpointer.options().everySteps();
  }

  /**
   * Copies a checkpoint's tensors into the existing trainable arrays (they are referenced by the
   * model, and DJL cannot replace a shaped parameter's array) and hands the moments to AdamW.
   */
  private void restoreTensors(Checkpointer.Restored r, AdamW optimizer) {
    if (!r.weights().keySet().equals(trainable.keySet())) {
      throw new IllegalStateException(
          "checkpoint "
              + r.checkpoint().uri()
              + " holds tensors "
              + r.weights().keySet()
              + ", this run trains "
              + trainable.keySet());
    }
    for (Map.Entry<String, NDArray> e : trainable.entrySet()) {
      Safetensors.FloatTensor t = r.weights().get(e.getKey());
      if (!new Shape(t.shape()).equals(e.getValue().getShape())) {
        throw new IllegalStateException(
            "checkpoint tensor " + e.getKey() + " has shape " + new Shape(t.shape()));
      }
      e.getValue().set(FloatBuffer.wrap(t.data()));
    }
    optimizer.restore(r.state().optimizerStep(), r.firstMoment(), r.secondMoment());
  }

  private boolean improves(Evaluation candidate, Evaluation best) {
    if (best == null) {
      return true;
    }
    Double now = candidate.metrics().get(options.metric());
    Double before = best.metrics().get(options.metric());
    if (now == null || before == null) {
      throw new BadInputException(
          "evaluation metric '" + options.metric() + "' is not computed for this dataset format");
    }
    return options.metricHigherIsBetter() ? now > before : now < before;
  }

  /** Clips gradients by global norm, runs AdamW, zeroes gradients; returns the norm. */
  private double applyUpdate(AdamW optimizer, double lr, NDManager scope) {
    scope.tempAttachAll(trainable.values().toArray(new NDArray[0]));
    Map<String, NDArray> gradients = new LinkedHashMap<>();
    double squares = 0;
    for (Map.Entry<String, NDArray> e : trainable.entrySet()) {
      NDArray grad = e.getValue().getGradient();
      gradients.put(e.getKey(), grad);
      squares += grad.square().sum().getFloat();
    }
    double norm = Math.sqrt(squares);
    if (!Double.isFinite(norm)) {
      return norm;
    }
    if (options.maxGradNorm() > 0 && norm > options.maxGradNorm()) {
      float scale = (float) (options.maxGradNorm() / (norm + 1e-6));
      gradients.values().forEach(g -> g.muli(scale));
    }
    optimizer.update(trainable, gradients, lr, scope);
    gradients.values().forEach(g -> g.subi(g));
    return norm;
  }

  /**
   * Summed negative log-likelihood of the batch's targets (next tokens, or the class label). When
   * {@code predictions} is given, the predicted class of each row is written into it.
   */
  NDArray negativeLogLikelihood(NDManager scope, Batch batch, boolean training, int[] predictions) {
    NDArray hidden = model.hiddenStates(batch.tokens(scope), null, training);
    if (batch.classification()) {
      int h = model.config().hiddenSize();
      NDArray last = hidden.gather(batch.lastIndex(scope, h), 1).reshape(batch.size, h);
      NDArray scores =
          last.getNDArrayInternal().linear(last, classifierHead, null).singletonOrThrow();
      if (predictions != null) {
        long[] argMax = scores.argMax(1).toLongArray();
        for (int i = 0; i < argMax.length; i++) {
          predictions[i] = (int) argMax[i];
        }
      }
      return scores.logSoftmax(1).gather(batch.labels(scope), 1).sum().neg();
    }
    return ChunkedCrossEntropy.summedNll(
        hidden, model.lmHead(), batch.targets, batch.targetWeights, scope, training);
  }

  /** Loss and perplexity over the validation set; classification metrics when labelled. */
  public Evaluation evaluate(long step, double epoch) {
    double nll = 0;
    long targets = 0;
    int n = validationExamples.size();
    int[] predicted = new int[n];
    int[] actual = new int[n];
    for (int from = 0; from < n; from += options.batchSize()) {
      int[] indices = new int[Math.min(options.batchSize(), n - from)];
      for (int i = 0; i < indices.length; i++) {
        indices[i] = from + i;
        actual[from + i] = validationExamples.get(from + i).label();
      }
      Batch batch = Batch.of(validationExamples, indices, padId);
      int[] rowPredictions = new int[indices.length];
      try (NDManager scope = root.newSubManager()) {
        nll += negativeLogLikelihood(scope, batch, false, rowPredictions).getFloat();
      }
      System.arraycopy(rowPredictions, 0, predicted, from, indices.length);
      targets += batch.targetCount();
    }
    Map<String, Double> metrics = new LinkedHashMap<>();
    double loss = nll / targets;
    metrics.put("eval_loss", round(loss));
    metrics.put("perplexity", round(Math.exp(loss)));
    if (labels != null) {
      ClassificationMetrics c = ClassificationMetrics.of(predicted, actual, labels.size());
      metrics.put("accuracy", round(c.accuracy()));
      metrics.put("f1", round(c.f1()));
      metrics.put("precision", round(c.precision()));
      metrics.put("recall", round(c.recall()));
    }
    Evaluation evaluation = new Evaluation(step, round(epoch), metrics);
    progress.emit(new TrainerEvent.Eval(step, metrics));
    return evaluation;
  }

  private static double round(double value) {
    return Math.round(value * 1e6) / 1e6;
  }

  /** Writes the trained result and metrics into {@code options.output()}. */
  public void export(Result result) throws IOException {
    OutputWriter.write(options, model, special, classifierHead, labels, result);
  }

  @Override
  public void close() {
    tokenizer.close();
    root.close();
  }
}
