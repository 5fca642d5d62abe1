package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.checkpoint.Checkpoint;
import io.kubetune.trainer.data.Example;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.storage.ObjectStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * One fine-tuning run, in DJL's shape: {@link TrainingSetup} loads model, tokenizer and data (the
 * constructor); {@link #train} opens the checkpointer and AdamW, restores the newest checkpoint
 * ({@link CheckpointRestore}) and runs the {@link TrainingLoop} with its listeners — {@link
 * ProgressListener}, {@link EvaluationListener} (evaluators, best, early stopping) and {@link
 * CheckpointListener}; {@link #export} writes the result.
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
      boolean preempted,
      /**
       * The evaluation of the weights that are exported: {@code last}, or with {@code
       * checkpoints.exportBest} the best checkpoint's (null without evaluations).
       */
      Evaluation exported) {}

  private final TrainingOptions options;
  private final ProgressReporter progress;
  private final TrainingSetup setup;

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
    this.setup = TrainingSetup.load(options, progress);
  }

  public LlamaModel model() {
    return setup.model;
  }

  public Map<String, NDArray> trainable() {
    return setup.trainable;
  }

  public NDArray classifierHead() {
    return setup.classifierHead;
  }

  /** Arrays alive under this run's root manager (for leak tests). */
  public int liveArrays() {
    return setup.root.getManagedArrays().size();
  }

  public List<Example> trainExamples() {
    return setup.trainExamples;
  }

  /** Optimizer steps the run plans: maxSteps, or epochs over the micro-batches. */
  public long plannedSteps() {
    return setup.plannedSteps();
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
    if (options.exportBest() && checkpointOptions == null) {
      throw new BadInputException(
          "checkpoints.exportBest exports the best checkpoint: set checkpoints.uri");
    }
    try (Checkpointer checkpointer =
        checkpointOptions == null
            ? null
            : new Checkpointer(checkpointOptions, System.err, checkpointStoreDecorator)) {
      return train(checkpointer);
    } catch (IOException e) {
      // Storage unreachable at start (restore) beyond the retries: exit 1, the Job retries.
      // Failed checkpoint writes do not end up here (see CheckpointListener).
      throw new UncheckedIOException("checkpoint storage: " + e.getMessage(), e);
    }
  }

  private Result train(Checkpointer checkpointer) throws IOException {
    long totalSteps = plannedSteps();
    Set<String> noDecay = new HashSet<>();
    setup.trainable.keySet().stream().filter(AdamW::exemptFromDecay).forEach(noDecay::add);
    RunState state = new RunState();
    boolean preempted;
    try (AdamW optimizer = new AdamW(setup.root, options.weightDecay(), noDecay)) {
      boolean resumed =
          CheckpointRestore.restore(checkpointer, setup.trainable, optimizer, state, progress);
      if (resumed) {
        lastCheckpointStep = state.step;
      }
      startStep = state.step;
      TrainingLoss loss = setup.loss();
      MetricGoal goal = MetricGoal.of(options);
      List<TrainingListener> listeners = new ArrayList<>();
      listeners.add(new ProgressListener(progress));
      listeners.add(
          new EvaluationListener(
              evaluators(loss),
              goal,
              options.evalEverySteps(),
              options.earlyStoppingPatience(),
              progress));
      CheckpointListener checkpoints = null;
      if (checkpointer != null) {
        checkpoints =
            new CheckpointListener(
                checkpointer,
                setup.trainable,
                optimizer,
                goal,
                options.seed(),
                progress,
                lastCheckpointStep);
        listeners.add(checkpoints);
      }
      TrainingLoop loop =
          new TrainingLoop(
              setup, loss, optimizer, totalSteps, listeners, () -> stopRequested, stopAfterStep);
      try {
        preempted = loop.run(state, resumed);
      } finally {
        if (checkpoints != null) {
          lastCheckpointStep = checkpoints.lastCheckpointStep();
        }
      }
    }
    FineTuner.Evaluation exported = state.latestEvaluation();
    if (options.exportBest() && !preempted && state.best != null) {
      exported = loadBestCheckpoint(checkpointer, goal(), state);
    }
    return result(state, totalSteps, preempted, exported);
  }

  private MetricGoal goal() {
    return MetricGoal.of(options);
  }

  /**
   * {@code checkpoints.exportBest}: puts the weights of the best checkpoint by the run's metric
   * (the operator's bestCheckpoint) into the model, so the export is that checkpoint, and returns
   * its evaluation. When no checkpoint has the metric (e.g. every checkpoint write failed) the last
   * weights stay, and stderr says so.
   */
  private Evaluation loadBestCheckpoint(Checkpointer checkpointer, MetricGoal goal, RunState state)
      throws IOException {
    Evaluation last = state.latestEvaluation();
    Optional<Checkpointer.Best> best = checkpointer.readBest(goal.metric(), goal.higherIsBetter());
    if (best.isEmpty()) {
      System.err.println(
          "warning: checkpoints.exportBest: no checkpoint carries "
              + goal.metric()
              + "; exporting the weights of the last step");
      return last;
    }
    Checkpoint cp = best.get().checkpoint();
    CheckpointRestore.copyWeights(cp.uri(), best.get().weights(), setup.trainable);
    System.err.println(
        "checkpoints.exportBest: exporting checkpoint step "
            + cp.step()
            + " ("
            + goal.metric()
            + " "
            + cp.metrics().get(goal.metric())
            + ") from "
            + cp.uri()
            + (last == null ? "" : "; the last evaluation was step " + last.step()));
    for (Evaluation e : state.history) {
      if (e.step() == cp.step()) {
        return e;
      }
    }
    // Every evaluation of the run is in the history (restored across resumes); a manifest has no
    // epoch, so this is only reached for a history cut short by hand.
    return new Evaluation(cp.step(), 0, cp.metrics());
  }

  /**
   * The evaluators of this run, in the order their metrics appear; none without validation data.
   * Another metric family (e.g. generation scored by exact match) is one more entry here.
   */
  private List<Evaluator> evaluators(TrainingLoss loss) {
    if (setup.validationExamples.isEmpty()) {
      return List.of();
    }
    List<Evaluator> evaluators = new ArrayList<>();
    evaluators.add(new ValidationLossEvaluator(setup, loss));
    if (options.generationMaxExamples() > 0 && !setup.validationCases.isEmpty()) {
      evaluators.add(new GenerationMetricsEvaluator(setup));
    }
    return evaluators;
  }

  private Result result(RunState state, long totalSteps, boolean preempted, Evaluation exported) {
    double seconds = state.seconds();
    long trainableCount = 0;
    for (NDArray a : setup.trainable.values()) {
      trainableCount += a.getShape().size();
    }
    return new Result(
        state.step,
        totalSteps,
        state.stoppedEarly,
        state.history,
        state.initial,
        state.latestEvaluation(),
        state.best,
        state.trainLoss,
        seconds > 0 ? state.tokens / seconds : 0,
        seconds,
        trainableCount,
        setup.model.config().parameterCount(),
        setup.labels,
        preempted,
        exported);
  }

  /** Writes the trained result and metrics into {@code options.output()}. */
  public void export(Result result) throws IOException {
    OutputWriter.write(
        options, setup.model, setup.special, setup.classifierHead, setup.labels, result);
  }

  @Override
  public void close() {
    setup.close();
  }
}
