package io.kubetune.trainer.train;

import io.kubetune.trainer.BadInputException;

/**
 * The metric a run optimises and its direction: early stopping and "best" (the best evaluation, the
 * checkpoint retention's best, the operator's best checkpoint) all rank by it.
 */
record MetricGoal(String metric, boolean higherIsBetter) {

  static MetricGoal of(TrainingOptions options) {
    return new MetricGoal(options.metric(), options.metricHigherIsBetter());
  }

  /** Whether {@code candidate} beats {@code best} (anything beats none). */
  boolean improves(FineTuner.Evaluation candidate, FineTuner.Evaluation best) {
    if (best == null) {
      return true;
    }
    Double now = candidate.metrics().get(metric);
    Double before = best.metrics().get(metric);
    if (now == null || before == null) {
      throw new BadInputException(
          "evaluation metric '" + metric + "' is not computed for this dataset format");
    }
    return higherIsBetter ? now > before : now < before;
  }
}
