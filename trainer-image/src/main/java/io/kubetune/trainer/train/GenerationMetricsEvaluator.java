package io.kubetune.trainer.train;

import static io.kubetune.trainer.train.Rounding.round;

import io.kubetune.trainer.eval.GenerationEvaluator;
import io.kubetune.trainer.eval.GenerationMetrics;
import io.kubetune.trainer.model.LlamaModel;
import java.util.Map;

/**
 * {@code exact_match}, {@code bleu} and {@code rouge_l} of greedy answers to the first {@code
 * evaluation.generation.maxExamples} held-out prompts (completion and chat data), with the model as
 * it is at the evaluated step (base + adapter, or the updated weights).
 */
final class GenerationMetricsEvaluator implements Evaluator {
  private final LlamaModel model;
  private final GenerationEvaluator generation;

  GenerationMetricsEvaluator(TrainingSetup setup) {
    this.model = setup.model;
    this.generation =
        new GenerationEvaluator(
            setup.tokenizer,
            setup.validationCases,
            setup.options.generationMaxExamples(),
            setup.options.generationMaxNewTokens());
  }

  @Override
  public void evaluate(long step, Map<String, Double> metrics) {
    GenerationMetrics scores = generation.evaluate(model);
    scores.asMap().forEach((key, value) -> metrics.put(key, round(value)));
  }
}
