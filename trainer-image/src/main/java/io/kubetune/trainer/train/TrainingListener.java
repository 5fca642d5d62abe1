package io.kubetune.trainer.train;

import java.util.function.BooleanSupplier;

/**
 * Something the {@link TrainingLoop} tells about its progress: DJL's {@code TrainingListener} idea
 * (the loop trains; logging, evaluation and checkpoints hang off it), with our own two callbacks
 * because our loop is not DJL's {@code EasyTrain}: it counts optimizer steps rather than epochs,
 * runs our own AdamW with name-keyed moments, and must resume exactly from a checkpoint, so the
 * listeners share the {@link RunState} a checkpoint saves instead of DJL's {@code Trainer} metrics.
 *
 * <p>Listeners run in the order they are given to the loop; each sees what the earlier ones did in
 * the same step (the checkpoint of a step records that step's evaluation and early-stop decision).
 */
interface TrainingListener {

  /**
   * Before this process's first step, after any resume.
   *
   * @param resumed whether the state came from a checkpoint (else the run starts at step 0)
   */
  default void onTrainingBegin(RunState state, boolean resumed) {}

  /** After each optimizer step ({@link RunState#step} already counts it). */
  void onStep(Step step);

  /** What one optimizer step did, as the loop measured it. */
  final class Step {
    final RunState state;
    final long totalSteps;

    /** Epochs done, unrounded ({@code DataOrder.epochOf}). */
    final double epoch;

    final float loss;
    final double learningRate;
    final double gradNorm;

    /** Steps, seconds and tokens of this process only (a resumed run's throughput). */
    final long stepsThisRun;

    final double secondsThisRun;
    final long tokensThisRun;

    private final BooleanSupplier stopSignal;
    private Boolean stopRequested;

    Step(
        RunState state,
        long totalSteps,
        double epoch,
        float loss,
        double learningRate,
        double gradNorm,
        long stepsThisRun,
        double secondsThisRun,
        long tokensThisRun,
        BooleanSupplier stopSignal) {
      this.state = state;
      this.totalSteps = totalSteps;
      this.epoch = epoch;
      this.loss = loss;
      this.learningRate = learningRate;
      this.gradNorm = gradNorm;
      this.stepsThisRun = stepsThisRun;
      this.secondsThisRun = secondsThisRun;
      this.tokensThisRun = tokensThisRun;
      this.stopSignal = stopSignal;
    }

    long step() {
      return state.step;
    }

    /**
     * Whether a stop (SIGTERM) was requested, read once per step at the first call and the same
     * answer after: the checkpoint listener and the loop's exit agree on it even when the signal
     * lands between them.
     */
    boolean stopRequested() {
      if (stopRequested == null) {
        stopRequested = stopSignal.getAsBoolean();
      }
      return stopRequested;
    }
  }
}
