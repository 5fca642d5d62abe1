package io.kubetune.trainer.train;

import java.util.Map;

/**
 * One source of evaluation metrics. The {@link EvaluationListener} runs every evaluator of the run
 * on the current weights before the first step and every {@code evalEverySteps}, merges their
 * metrics (in evaluator order) into one {@link FineTuner.Evaluation}, and ranks it by the run's
 * {@link MetricGoal}.
 *
 * <p>Adding a metric family is adding an evaluator: e.g. greedy generation on held-out prompts
 * scored by exact match, BLEU or ROUGE-L would implement this interface (built in {@link
 * FineTuner#train} from the {@link TrainingSetup}'s model, tokenizer and validation examples) and
 * put {@code exact_match}, {@code bleu}, {@code rouge_l}. With its key added to {@code EvalMetric}
 * (operator/api: key, direction, the formats that compute it), a metric an evaluator puts can be
 * the run's {@code metric}: early stopping, the checkpoints' manifests (retention keeps the best by
 * it) and the operator's best checkpoint all rank by that one key.
 */
interface Evaluator {

  /**
   * Measures the current weights and puts this evaluator's metrics (rounded to 6 decimals) into
   * {@code metrics}. Runs without gradients; arrays it creates must live in a sub-manager it
   * closes.
   *
   * @param step the optimizer step evaluated (0: before training)
   */
  void evaluate(long step, Map<String, Double> metrics);
}
