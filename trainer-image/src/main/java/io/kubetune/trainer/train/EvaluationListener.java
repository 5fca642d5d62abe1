package io.kubetune.trainer.train;

import static io.kubetune.trainer.train.Rounding.round;

import io.kubetune.api.trainer.TrainerEvent;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Evaluates before the first step and every {@code evalEverySteps} (and at the last step): runs the
 * {@link Evaluator}s, emits an {@code eval} event, records the evaluation in the {@link RunState},
 * keeps the best by the {@link MetricGoal}, and stops early after {@code patience} evaluations
 * without improvement (0: never). Does nothing without validation data.
 */
final class EvaluationListener implements TrainingListener {
  private final List<Evaluator> evaluators;
  private final MetricGoal goal;
  private final int everySteps;
  private final int patience;
  private final ProgressReporter progress;

  /**
   * @param evaluators empty when there is no validation data: then nothing is evaluated
   */
  EvaluationListener(
      List<Evaluator> evaluators,
      MetricGoal goal,
      int everySteps,
      int patience,
      ProgressReporter progress) {
    this.evaluators = List.copyOf(evaluators);
    this.goal = goal;
    this.everySteps = everySteps;
    this.patience = patience;
    this.progress = progress;
  }

  @Override
  public void onTrainingBegin(RunState state, boolean resumed) {
    // A resumed run has its baseline (and best) from the checkpoint.
    if (!resumed && !evaluators.isEmpty()) {
      state.initial = evaluate(0, 0);
      state.best = state.initial;
    }
  }

  @Override
  public void onStep(Step s) {
    long step = s.step();
    boolean due = step % everySteps == 0 || step == s.totalSteps;
    if (evaluators.isEmpty() || !due) {
      return;
    }
    RunState state = s.state;
    FineTuner.Evaluation evaluation = evaluate(step, s.epoch);
    state.history.add(evaluation);
    if (goal.improves(evaluation, state.best)) {
      state.best = evaluation;
      state.evalsWithoutImprovement = 0;
    } else {
      state.evalsWithoutImprovement++;
    }
    if (patience > 0 && state.evalsWithoutImprovement >= patience) {
      state.stoppedEarly = true;
    }
  }

  /** Runs every evaluator on the current weights and emits the {@code eval} event. */
  FineTuner.Evaluation evaluate(long step, double epoch) {
    Map<String, Double> metrics = new LinkedHashMap<>();
    for (Evaluator evaluator : evaluators) {
      evaluator.evaluate(step, metrics);
    }
    FineTuner.Evaluation evaluation = new FineTuner.Evaluation(step, round(epoch), metrics);
    progress.emit(new TrainerEvent.Eval(step, metrics));
    return evaluation;
  }
}
