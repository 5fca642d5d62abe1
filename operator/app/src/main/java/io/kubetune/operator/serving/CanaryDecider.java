package io.kubetune.operator.serving;

import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.v1alpha1.CanaryDecision;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;

/**
 * Whether a canary that passed the quality gate on held-out data is promoted, rolled back or still
 * observed, from its live error rate (server errors over requests, summed over the ready serving
 * pods). Pure.
 *
 * <ul>
 *   <li>Once the canary answered {@link #EARLY_ROLLBACK_MIN_REQUESTS} requests and its error rate
 *       is above serving.canary.maxErrorRate, it is rolled back at once (no need to wait).
 *   <li>Before startedAt + serving.canary.duration: observing.
 *   <li>At the deadline: error rate at most maxErrorRate promotes, above it rolls back.
 *   <li>No request at all by the deadline: promoted on the quality gate alone, and the decision
 *       says so (the operator emits a Warning Event). Holding instead would block every later
 *       retrain of an idle endpoint; the gate already passed on held-out data.
 * </ul>
 */
public final class CanaryDecider {
  /** Requests the canary must have answered before its error rate can roll it back early. */
  public static final long EARLY_ROLLBACK_MIN_REQUESTS = 20;

  private CanaryDecider() {}

  /** Requests and server errors of both variants, summed over the pods. */
  public record Tally(long requests, long errors, long stableRequests, long stableErrors) {
    public static final Tally NONE = new Tally(0, 0, 0, 0);

    /** Server errors over requests; 0 without requests. */
    public double errorRate() {
      return requests == 0 ? 0 : (double) errors / requests;
    }

    /**
     * Sums the pods' reports for {@code model}: the canary variant with {@code canaryDigest}, the
     * stable one with {@code stableDigest} (a pod still running another adapter is not counted).
     */
    public static Tally of(
        List<VariantsReport> reports, String model, String stableDigest, String canaryDigest) {
      long requests = 0;
      long errors = 0;
      long stableRequests = 0;
      long stableErrors = 0;
      for (VariantsReport report : reports) {
        for (VariantsReport.Variant v : report.data) {
          if (!model.equals(v.model)) {
            continue;
          }
          if (VariantsReport.CANARY.equals(v.variant) && canaryDigest.equals(v.sha256)) {
            requests += v.requests;
            errors += v.errors;
          } else if (VariantsReport.STABLE.equals(v.variant) && stableDigest.equals(v.sha256)) {
            stableRequests += v.requests;
            stableErrors += v.errors;
          }
        }
      }
      return new Tally(requests, errors, stableRequests, stableErrors);
    }
  }

  /**
   * A decision and why.
   *
   * @param unobserved promoted without a single request: on the quality gate alone
   */
  public record Decision(CanaryDecision decision, String message, boolean unobserved) {}

  public static Decision decide(
      Tally tally, Instant startedAt, Duration duration, double maxErrorRate, Instant now) {
    String rate = describe(tally, maxErrorRate);
    if (tally.requests() >= EARLY_ROLLBACK_MIN_REQUESTS && tally.errorRate() > maxErrorRate) {
      return new Decision(CanaryDecision.RolledBack, "rolled back early: " + rate, false);
    }
    if (now.isBefore(startedAt.plus(duration))) {
      return new Decision(CanaryDecision.Observing, "observing: " + rate, false);
    }
    if (tally.requests() == 0) {
      return new Decision(
          CanaryDecision.Promoted,
          "the canary received no request in "
              + duration.toSeconds()
              + "s; promoted on the quality gate alone",
          true);
    }
    if (tally.errorRate() <= maxErrorRate) {
      return new Decision(CanaryDecision.Promoted, "promoted: " + rate, false);
    }
    return new Decision(CanaryDecision.RolledBack, "rolled back: " + rate, false);
  }

  private static String describe(Tally tally, double maxErrorRate) {
    return String.format(
        Locale.ROOT,
        "%d of %d canary requests failed (error rate %.4f, serving.canary.maxErrorRate %.4f)",
        tally.errors(),
        tally.requests(),
        tally.errorRate(),
        maxErrorRate);
  }
}
