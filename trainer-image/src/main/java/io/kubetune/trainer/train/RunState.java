package io.kubetune.trainer.train;

import java.util.ArrayList;
import java.util.List;

/**
 * Where a run stands: the loop advances {@link #step}, {@link #tokens} and {@link #trainLoss}; the
 * {@link EvaluationListener} keeps the evaluation history, the best evaluation and the early-stop
 * decision. A checkpoint saves all of it ({@link #snapshot}) and a resume puts it back ({@link
 * #restore}); together with (seed, step), which fix the data order, the LR schedule and the dropout
 * masks, that is everything the loop needs to continue exactly.
 */
final class RunState {
  /** Optimizer steps done (over all attempts). */
  long step;

  /** Tokens trained on (over all attempts). */
  long tokens;

  /** Per optimizer step: {step, loss, seconds since start, tokens since start}. */
  final List<double[]> trainLoss = new ArrayList<>();

  final List<FineTuner.Evaluation> history = new ArrayList<>();

  /** The evaluation before the first step (null without validation data). */
  FineTuner.Evaluation initial;

  /** The best evaluation so far by the run's {@link MetricGoal}. */
  FineTuner.Evaluation best;

  int evalsWithoutImprovement;

  /** Set by early stopping; the loop ends after the step that set it. */
  boolean stoppedEarly;

  /** Puts back what a checkpoint saved. */
  void restore(Checkpointer.TrainerState state) {
    step = state.step();
    tokens = state.tokens();
    initial = state.initial();
    best = state.best();
    evalsWithoutImprovement = state.evalsWithoutImprovement();
    stoppedEarly = state.stoppedEarly();
    history.addAll(state.history());
    trainLoss.addAll(state.trainLoss());
  }

  /** What a checkpoint of the current step saves. */
  Checkpointer.TrainerState snapshot(long optimizerStep, double epoch, long seed) {
    return new Checkpointer.TrainerState(
        step,
        optimizerStep,
        epoch,
        seed,
        tokens,
        initial,
        best,
        evalsWithoutImprovement,
        stoppedEarly,
        history,
        trainLoss);
  }

  /** The newest evaluation, or null. */
  FineTuner.Evaluation latestEvaluation() {
    return history.isEmpty() ? null : history.get(history.size() - 1);
  }

  /** Seconds trained over all attempts (the time of the newest step). */
  double seconds() {
    return trainLoss.isEmpty() ? 0 : trainLoss.get(trainLoss.size() - 1)[2];
  }
}
