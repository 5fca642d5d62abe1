package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.BadInputException;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The evaluation listener without a model: evaluators are merged in order, any evaluator's metric
 * can be the goal (best and early stopping follow it), and the per-step stop signal is read once.
 */
class EvaluationListenerTest {

  /** Puts the next of {@code values} under {@code key} at each evaluation. */
  static Evaluator scripted(String key, Double... values) {
    Iterator<Double> next = List.of(values).iterator();
    return (step, metrics) -> metrics.put(key, next.next());
  }

  static TrainingListener.Step step(RunState state, long totalSteps) {
    state.step++;
    return new TrainingListener.Step(state, totalSteps, 0.5, 1f, 1e-3, 1, 1, 1, 10, () -> false);
  }

  @Test
  void aSecondEvaluatorsMetricRanksTheRunAndStopsItEarly() {
    // A generation-style evaluator after the loss: its exact_match is the goal, higher is better.
    EvaluationListener listener =
        new EvaluationListener(
            List.of(
                scripted("eval_loss", 3.0, 2.0, 1.5, 1.2, 1.1),
                scripted("exact_match", 0.1, 0.4, 0.3, 0.35, 0.9)),
            new MetricGoal("exact_match", true),
            1,
            2,
            ProgressReporter.silent());
    RunState state = new RunState();
    listener.onTrainingBegin(state, false);
    assertThat(state.initial.metrics())
        .containsExactly(
            java.util.Map.entry("eval_loss", 3.0), java.util.Map.entry("exact_match", 0.1));
    for (int i = 0; i < 3 && !state.stoppedEarly; i++) {
      listener.onStep(step(state, 10));
    }
    // Step 1 improved (0.4), steps 2 and 3 did not (0.3, 0.35) although eval_loss kept falling.
    assertThat(state.best.step()).isEqualTo(1);
    assertThat(state.evalsWithoutImprovement).isEqualTo(2);
    assertThat(state.stoppedEarly).isTrue();
    assertThat(state.history).extracting(FineTuner.Evaluation::step).containsExactly(1L, 2L, 3L);
  }

  @Test
  void evaluatesEveryNStepsAndAtTheLastStep() {
    AtomicInteger calls = new AtomicInteger();
    EvaluationListener listener =
        new EvaluationListener(
            List.of((step, metrics) -> metrics.put("eval_loss", 1.0 / calls.incrementAndGet())),
            new MetricGoal("eval_loss", false),
            3,
            0,
            ProgressReporter.silent());
    RunState state = new RunState();
    listener.onTrainingBegin(state, false);
    for (int i = 0; i < 7; i++) {
      listener.onStep(step(state, 7));
    }
    assertThat(state.history).extracting(FineTuner.Evaluation::step).containsExactly(3L, 6L, 7L);
    assertThat(state.best.step()).isEqualTo(7);
    assertThat(state.stoppedEarly).isFalse();
  }

  @Test
  void aResumedRunKeepsItsBaselineAndNoValidationDataMeansNoEvaluation() {
    AtomicInteger calls = new AtomicInteger();
    Evaluator counting =
        (step, metrics) -> metrics.put("eval_loss", (double) calls.incrementAndGet());
    RunState resumed = new RunState();
    new EvaluationListener(
            List.of(counting), new MetricGoal("eval_loss", false), 1, 0, ProgressReporter.silent())
        .onTrainingBegin(resumed, true);
    assertThat(resumed.initial).isNull();
    assertThat(calls).hasValue(0);

    EvaluationListener none =
        new EvaluationListener(
            List.of(), new MetricGoal("eval_loss", false), 1, 1, ProgressReporter.silent());
    RunState state = new RunState();
    none.onTrainingBegin(state, false);
    none.onStep(step(state, 1));
    assertThat(state.initial).isNull();
    assertThat(state.history).isEmpty();
    assertThat(state.stoppedEarly).isFalse();
  }

  @Test
  void aGoalNoEvaluatorComputesIsRefusedByName() {
    EvaluationListener listener =
        new EvaluationListener(
            List.of(scripted("eval_loss", 2.0, 1.0)),
            new MetricGoal("accuracy", true),
            1,
            0,
            ProgressReporter.silent());
    RunState state = new RunState();
    listener.onTrainingBegin(state, false);
    assertThatThrownBy(() -> listener.onStep(step(state, 5)))
        .isInstanceOf(BadInputException.class)
        .hasMessage("evaluation metric 'accuracy' is not computed for this dataset format");
  }

  @Test
  void theStopSignalIsReadOncePerStep() {
    AtomicInteger reads = new AtomicInteger();
    TrainingListener.Step s =
        new TrainingListener.Step(
            new RunState(), 5, 0, 1f, 1e-3, 1, 1, 1, 1, () -> reads.incrementAndGet() > 1);
    assertThat(s.stopRequested()).isFalse();
    assertThat(s.stopRequested()).isFalse();
    assertThat(reads).hasValue(1);
  }
}
