package io.kubetune.operator.status;

import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.GateSpec;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Decides whether a tuned model may be served: an absolute threshold on a held-out metric, or a
 * required improvement over the base model evaluated on the same split. Pure.
 */
public final class QualityGate {

  /**
   * @param passed the tuned model may be rolled out
   * @param reason CamelCase condition reason
   * @param message both numbers and the criterion, for humans
   */
  public record Decision(boolean passed, String reason, String message) {}

  private QualityGate() {}

  public static Decision evaluate(
      GateSpec gate, Map<String, Double> baseMetrics, Map<String, Double> tunedMetrics) {
    if (gate == null) {
      return new Decision(true, "NoQualityGate", "no quality gate configured");
    }
    EvalMetric metric = gate.metric;
    Double tuned = tunedMetrics == null ? null : tunedMetrics.get(metric.key());
    Double base = baseMetrics == null ? null : baseMetrics.get(metric.key());
    if (tuned == null || tuned.isNaN()) {
      return new Decision(
          false,
          "MetricsUnavailable",
          "the trainer reported no " + metric.key() + " for the tuned model");
    }
    String baseText = base == null ? "n/a" : format(base);
    String op = metric.higherIsBetter() ? ">=" : "<=";
    if (gate.threshold != null) {
      boolean passed = metric.higherIsBetter() ? tuned >= gate.threshold : tuned <= gate.threshold;
      String message =
          String.format(
              Locale.ROOT,
              "tuned %s %s %s threshold %s (base %s)",
              metric.key(),
              format(tuned),
              passed ? op : "is not " + op,
              format(gate.threshold),
              baseText);
      return new Decision(passed, passed ? "QualityGatePassed" : "QualityGateFailed", message);
    }
    if (base == null || base.isNaN()) {
      return new Decision(
          false,
          "MetricsUnavailable",
          "mustBeatBase needs the base model's " + metric.key() + ", which was not reported");
    }
    double margin = Objects.requireNonNullElse(gate.minMargin, 0.0);
    double improvement = metric.higherIsBetter() ? tuned - base : base - tuned;
    boolean passed = improvement > 0 && improvement >= margin;
    String message =
        String.format(
            Locale.ROOT,
            "tuned %s %s vs base %s: improvement %s, %s %s",
            metric.key(),
            format(tuned),
            format(base),
            format(improvement),
            passed ? "meets" : "does not meet",
            margin > 0 ? "the minimum margin " + format(margin) : "must beat base");
    return new Decision(passed, passed ? "QualityGatePassed" : "QualityGateFailed", message);
  }

  private static String format(double value) {
    return String.format(Locale.ROOT, "%.4f", value);
  }
}
