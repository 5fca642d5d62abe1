package io.kubetune.trainer.train;

import static io.kubetune.trainer.train.Rounding.round;

import ai.djl.ndarray.NDManager;
import io.kubetune.trainer.data.Example;
import java.util.List;
import java.util.Map;

/**
 * Loss and perplexity over the validation set ({@code eval_loss}, {@code perplexity}); with class
 * labels also {@code accuracy}, {@code f1}, {@code precision} and {@code recall}.
 */
final class ValidationLossEvaluator implements Evaluator {
  private final TrainingLoss loss;
  private final List<Example> examples;
  private final List<String> labels;
  private final int batchSize;
  private final long padId;
  private final NDManager root;

  ValidationLossEvaluator(TrainingSetup setup, TrainingLoss loss) {
    this.loss = loss;
    this.examples = setup.validationExamples;
    this.labels = setup.labels;
    this.batchSize = setup.options.batchSize();
    this.padId = setup.padId;
    this.root = setup.root;
  }

  @Override
  public void evaluate(long step, Map<String, Double> metrics) {
    double nll = 0;
    long targets = 0;
    int n = examples.size();
    int[] predicted = new int[n];
    int[] actual = new int[n];
    for (int from = 0; from < n; from += batchSize) {
      int[] indices = new int[Math.min(batchSize, n - from)];
      for (int i = 0; i < indices.length; i++) {
        indices[i] = from + i;
        actual[from + i] = examples.get(from + i).label();
      }
      Batch batch = Batch.of(examples, indices, padId);
      int[] rowPredictions = new int[indices.length];
      try (NDManager scope = root.newSubManager()) {
        nll += loss.negativeLogLikelihood(scope, batch, false, rowPredictions).getFloat();
      }
      System.arraycopy(rowPredictions, 0, predicted, from, indices.length);
      targets += batch.targetCount();
    }
    double meanLoss = nll / targets;
    metrics.put("eval_loss", round(meanLoss));
    metrics.put("perplexity", round(Math.exp(meanLoss)));
    if (labels != null) {
      ClassificationMetrics c = ClassificationMetrics.of(predicted, actual, labels.size());
      metrics.put("accuracy", round(c.accuracy()));
      metrics.put("f1", round(c.f1()));
      metrics.put("precision", round(c.precision()));
      metrics.put("recall", round(c.recall()));
    }
  }
}
