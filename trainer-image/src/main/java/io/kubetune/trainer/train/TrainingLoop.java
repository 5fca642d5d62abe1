package io.kubetune.trainer.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.kubetune.trainer.data.DataOrder;
import io.kubetune.trainer.data.Example;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * The training loop and nothing else: per optimizer step, gather the micro-batches of (seed, step),
 * accumulate the gradients of {@link TrainingLoss#microBatchLoss}, clip by global norm, update with
 * AdamW under the warmup+cosine schedule, then hand the step to the {@link TrainingListener}s
 * (progress, evaluation and early stopping, checkpoints). Every array a step creates lives in that
 * step's child manager, so native memory stays flat over long runs.
 */
final class TrainingLoop {
  private final TrainingOptions options;
  private final NDManager root;
  private final List<Example> examples;
  private final long padId;
  private final Map<String, NDArray> trainable;
  private final TrainingLoss loss;
  private final AdamW optimizer;
  private final long totalSteps;
  private final List<TrainingListener> listeners;
  private final BooleanSupplier stopRequested;
  private final long stopAfterStep;

  /**
   * @param stopRequested polled once per step: finish it, checkpoint, return preempted (SIGTERM)
   * @param stopAfterStep test hook: leave after this step without finishing, as a crash would
   */
  TrainingLoop(
      TrainingSetup setup,
      TrainingLoss loss,
      AdamW optimizer,
      long totalSteps,
      List<TrainingListener> listeners,
      BooleanSupplier stopRequested,
      long stopAfterStep) {
    this.options = setup.options;
    this.root = setup.root;
    this.examples = setup.trainExamples;
    this.padId = setup.padId;
    this.trainable = setup.trainable;
    this.loss = loss;
    this.optimizer = optimizer;
    this.totalSteps = totalSteps;
    this.listeners = List.copyOf(listeners);
    this.stopRequested = stopRequested;
    this.stopAfterStep = stopAfterStep;
  }

  /**
   * Trains from {@code state} (step 0, or a restored checkpoint's) to the planned steps, early
   * stopping, a stop request or the test hook's step.
   *
   * @param resumed whether {@code state} came from a checkpoint
   * @return true when a stop request ended the run before its planned steps (preempted)
   */
  boolean run(RunState state, boolean resumed) {
    for (TrainingListener listener : listeners) {
      listener.onTrainingBegin(state, resumed);
    }
    DataOrder order = new DataOrder(options.seed(), examples.size(), options.batchSize());
    LearningRateSchedule schedule =
        new LearningRateSchedule(options.learningRate(), options.warmupSteps(), totalSteps);
    long startStep = state.step;
    // Times in trainLoss continue across a resume; throughput counts this process only.
    double secondsBefore = state.seconds();
    long started = System.nanoTime() - (long) (secondsBefore * 1e9);
    long tokensAtStart = state.tokens;
    while (state.step < totalSteps && !state.stoppedEarly) {
      if (stopRequested.getAsBoolean() && state.step == startStep) {
        // Nothing trained since the start (or the restored checkpoint): nothing to save.
        return true;
      }
      long microBatch = state.step * options.gradientAccumulation();
      List<Batch> batches = new ArrayList<>();
      int targets = 0;
      for (int i = 0; i < options.gradientAccumulation(); i++) {
        Batch batch = Batch.of(examples, order.batch(microBatch + i), padId);
        batches.add(batch);
        targets += batch.targetCount();
        state.tokens += batch.tokenCount();
      }
      double lr = schedule.at(state.step);
      float stepLoss = 0;
      double gradNorm;
      // Dropout masks depend only on (seed, step), so a resumed run draws the same ones.
      Engine.getInstance().setRandomSeed(stepSeed(options.seed(), state.step));
      try (NDManager scope = root.newSubManager()) {
        for (Batch batch : batches) {
          try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            float value =
                loss.accumulateGradients(
                    scope, batch, targets, collector, options.gradientCheckpointing());
            if (!Float.isFinite(value)) {
              throw new LossNotFiniteException(state.step + 1, value);
            }
            stepLoss += value;
          }
        }
        gradNorm = applyUpdate(lr, scope);
        if (!Double.isFinite(gradNorm)) {
          throw new LossNotFiniteException(state.step + 1, (float) gradNorm);
        }
      }
      state.step++;
      double seconds = (System.nanoTime() - started) / 1e9;
      state.trainLoss.add(new double[] {state.step, stepLoss, seconds, state.tokens});
      TrainingListener.Step done =
          new TrainingListener.Step(
              state,
              totalSteps,
              order.epochOf(state.step * options.gradientAccumulation()),
              stepLoss,
              lr,
              gradNorm,
              state.step - startStep,
              seconds - secondsBefore,
              state.tokens - tokensAtStart,
              stopRequested);
      for (TrainingListener listener : listeners) {
        listener.onStep(done);
      }
      if (done.stopRequested() && state.step < totalSteps && !state.stoppedEarly) {
        return true;
      }
      if (state.step >= stopAfterStep) {
        break;
      }
    }
    return false;
  }

  private double applyUpdate(double lr, NDManager scope) {
    return applyUpdate(trainable, optimizer, lr, options.maxGradNorm(), scope);
  }

  /**
   * Clips the gradients of {@code trainable} by global norm (when {@code maxGradNorm} > 0), runs
   * AdamW, zeroes the gradients; returns the norm (and updates nothing when it is not finite).
   */
  static double applyUpdate(
      Map<String, NDArray> trainable,
      AdamW optimizer,
      double lr,
      double maxGradNorm,
      NDManager scope) {
    scope.tempAttachAll(trainable.values().toArray(new NDArray[0]));
    Map<String, NDArray> gradients = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : trainable.entrySet()) {
      gradients.put(e.getKey(), e.getValue().getGradient());
    }
    double squares = 0;
    for (float sum : optimizer.kernels().sumsOfSquares(List.copyOf(gradients.values()))) {
      squares += sum;
    }
    double norm = Math.sqrt(squares);
    if (!Double.isFinite(norm)) {
      return norm;
    }
    double scale = maxGradNorm > 0 && norm > maxGradNorm ? maxGradNorm / (norm + 1e-6) : 1.0;
    optimizer.update(trainable, gradients, lr, scale, scope);
    optimizer.kernels().zero(List.copyOf(gradients.values()));
    return norm;
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
}
