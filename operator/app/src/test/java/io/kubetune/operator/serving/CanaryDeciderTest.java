package io.kubetune.operator.serving;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.operator.serving.CanaryDecider.Tally;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CanaryDeciderTest {
  static final Instant T0 = Instant.parse("2026-11-24T10:00:00Z");
  static final Duration TEN_MINUTES = Duration.ofMinutes(10);

  @ParameterizedTest(name = "{0} requests, {1} errors, max {2}, at +{3}s: {4}")
  @CsvSource({
    // before the deadline: observing, unless the early-rollback rule applies
    "0, 0, 0.01, 0, Observing",
    "19, 19, 0.01, 60, Observing", // too few requests to roll back early
    "20, 1, 0.05, 60, Observing", // 0.05 is not above 0.05
    "20, 2, 0.05, 60, RolledBack", // 0.10 > 0.05 with 20 requests: early
    "100, 2, 0.01, 599, RolledBack",
    // at the deadline
    "100, 1, 0.01, 600, Promoted", // exactly the maximum passes
    "100, 2, 0.01, 600, RolledBack",
    "10, 0, 0.0, 600, Promoted",
    "10, 1, 0.0, 600, RolledBack", // below 20 requests but at the deadline: decided
    "0, 0, 0.01, 600, Promoted", // no traffic: promoted on the gate alone
    "5, 5, 1.0, 601, Promoted", // maxErrorRate 1 accepts anything
  })
  void decides(long requests, long errors, double max, long seconds, CanaryDecision expected) {
    CanaryDecider.Decision d =
        CanaryDecider.decide(
            new Tally(requests, errors, 0, 0), T0, TEN_MINUTES, max, T0.plusSeconds(seconds));
    assertThat(d.decision()).isEqualTo(expected);
    assertThat(d.unobserved()).isEqualTo(requests == 0 && expected == CanaryDecision.Promoted);
    assertThat(d.message())
        .contains(
            expected == CanaryDecision.Promoted && requests == 0
                ? "no request"
                : errors + " of " + requests);
  }

  @Test
  void tallySumsThePodsAndCountsOnlyTheVariantsBeingCompared() {
    VariantsReport pod1 =
        report(
            variant("m", "stable", "d1", 90, 1),
            variant("m", "canary", "d2", 10, 2),
            variant("other", "stable", "x", 50, 50));
    VariantsReport pod2 =
        report(
            variant("m", "stable", "d1", 80, 0),
            variant("m", "canary", "d2", 20, 0),
            // a pod still on an older canary is not counted
            variant("m", "canary", "d0", 500, 500));
    Tally t = Tally.of(List.of(pod1, pod2), "m", "d1", "d2");
    assertThat(t).isEqualTo(new Tally(30, 2, 170, 1));
    assertThat(t.errorRate()).isEqualTo(2.0 / 30);
    assertThat(Tally.of(List.of(), "m", "d1", "d2")).isEqualTo(Tally.NONE);
  }

  @Test
  void aReportRoundTripsThroughTheOneClassBothSidesUse() {
    VariantsReport written = report(variant("m", "canary", "d2", 10, 2));
    written.pod = "m-serve-abc";
    VariantsReport read = VariantsReport.parse(written.toJson());
    assertThat(read.pod).isEqualTo("m-serve-abc");
    assertThat(read.data.get(0).requests).isEqualTo(10);
    assertThat(written.toJson()).contains("\"client_errors\":0");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> VariantsReport.parse("[1]"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("/v1/variants");
  }

  static VariantsReport report(VariantsReport.Variant... variants) {
    VariantsReport r = new VariantsReport();
    r.data.addAll(List.of(variants));
    return r;
  }

  static VariantsReport.Variant variant(
      String model, String variant, String digest, long requests, long errors) {
    VariantsReport.Variant v = new VariantsReport.Variant();
    v.model = model;
    v.variant = variant;
    v.sha256 = digest;
    v.requests = requests;
    v.errors = errors;
    return v;
  }
}
