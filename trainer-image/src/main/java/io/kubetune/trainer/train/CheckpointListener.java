package io.kubetune.trainer.train;

import static io.kubetune.trainer.train.Rounding.round;

import ai.djl.ndarray.NDArray;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.StorageFullException;
import java.io.IOException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;

/**
 * Commits a checkpoint every {@code checkpoints.everySteps}, at the last step, when the run stops
 * early and when a stop (SIGTERM) was requested: the trainable tensors, the AdamW moments and the
 * {@link RunState}, ranked by the step's own evaluation. Runs after the {@link EvaluationListener}
 * so a checkpoint holds its step's evaluation and early-stop decision.
 */
final class CheckpointListener implements TrainingListener {
  private final Checkpointer checkpointer;
  private final Map<String, NDArray> trainable;
  private final AdamW optimizer;
  private final MetricGoal goal;
  private final long seed;
  private final ProgressReporter progress;

  /** Step of the newest checkpoint committed or resumed by this process; -1 if none. */
  private long lastCheckpointStep;

  private int consecutiveFailures;

  CheckpointListener(
      Checkpointer checkpointer,
      Map<String, NDArray> trainable,
      AdamW optimizer,
      MetricGoal goal,
      long seed,
      ProgressReporter progress,
      long resumedStep) {
    this.checkpointer = checkpointer;
    this.trainable = trainable;
    this.optimizer = optimizer;
    this.goal = goal;
    this.seed = seed;
    this.progress = progress;
    this.lastCheckpointStep = resumedStep;
  }

  /** Step of the newest checkpoint committed or resumed by this process, or -1. */
  long lastCheckpointStep() {
    return lastCheckpointStep;
  }

  @Override
  public void onStep(Step s) {
    RunState state = s.state;
    long step = state.step;
    boolean stopNow = s.stopRequested();
    boolean due =
        step % checkpointer.options().everySteps() == 0
            || step == s.totalSteps
            || state.stoppedEarly
            || stopNow;
    if (!due) {
      return;
    }
    FineTuner.Evaluation latest = state.latestEvaluation();
    // Only an evaluation of these very weights ranks the checkpoint: a SIGTERM checkpoint
    // at step 130 must not inherit step 100's metrics and win "best" with unevaluated
    // weights (retention and the operator's bestCheckpoint both rank by these).
    Map<String, Double> evaluated =
        latest != null && latest.step() == step ? latest.metrics() : Map.of();
    consecutiveFailures =
        save(
            state.snapshot(optimizer.step(), round(s.epoch), seed),
            evaluated,
            consecutiveFailures,
            step < s.totalSteps && !state.stoppedEarly && !stopNow);
  }

  /**
   * Commits a checkpoint; a failure (storage down beyond its retries, disk full) is reported as a
   * {@code warning} event and training goes on: the next interval tries again, and losing a
   * checkpoint costs at most the steps until the next one, while ending the run would lose all
   * steps since the previous one. Returns the consecutive failures so far (0 after a commit).
   */
  private int save(
      Checkpointer.TrainerState state,
      Map<String, Double> metrics,
      int failuresBefore,
      boolean moreToCome) {
    long step = state.step();
    try {
      String uri =
          checkpointer.save(
              state, trainable, optimizer, metrics, goal.metric(), goal.higherIsBetter());
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
              ? "training goes on; the next checkpoint is tried at step " + nextCheckpointStep(step)
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

  private long nextCheckpointStep(long step) {
    long every = checkpointer.options().everySteps();
    return (step / every + 1) * every;
  }
}
