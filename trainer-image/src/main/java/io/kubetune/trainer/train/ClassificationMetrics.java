package io.kubetune.trainer.train;

/**
 * Accuracy and macro-averaged precision, recall and F1 over all classes (a class never predicted
 * has precision 0, as scikit-learn's zero_division=0).
 */
public record ClassificationMetrics(double accuracy, double precision, double recall, double f1) {

  public static ClassificationMetrics of(int[] predicted, int[] actual, int classes) {
    long[] truePositive = new long[classes];
    long[] predictedCount = new long[classes];
    long[] actualCount = new long[classes];
    long correct = 0;
    for (int i = 0; i < predicted.length; i++) {
      predictedCount[predicted[i]]++;
      actualCount[actual[i]]++;
      if (predicted[i] == actual[i]) {
        truePositive[actual[i]]++;
        correct++;
      }
    }
    double precision = 0;
    double recall = 0;
    double f1 = 0;
    for (int c = 0; c < classes; c++) {
      double p = predictedCount[c] == 0 ? 0 : (double) truePositive[c] / predictedCount[c];
      double r = actualCount[c] == 0 ? 0 : (double) truePositive[c] / actualCount[c];
      precision += p;
      recall += r;
      f1 += p + r == 0 ? 0 : 2 * p * r / (p + r);
    }
    return new ClassificationMetrics(
        (double) correct / predicted.length, precision / classes, recall / classes, f1 / classes);
  }
}
