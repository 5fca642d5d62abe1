package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanaryStatus;
import io.kubetune.api.v1alpha1.ServingStatus;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class CanaryProgressTest {
  static final String RUN_1 = "1a".repeat(32);
  static final String RUN_2 = "2b".repeat(32);

  static ServingStatus observing(long canaryRequests) {
    ServingStatus serving = new ServingStatus();
    serving.adapterUri = "pvc://local-scratch/quickstart/final/aaa/";
    serving.adapterDigest = RUN_1;
    serving.canary = new CanaryStatus();
    serving.canary.adapterUri = "pvc://local-scratch/quickstart/final/bbb/";
    serving.canary.adapterDigest = RUN_2;
    serving.canary.weight = 25;
    serving.canary.decision = CanaryDecision.Observing;
    serving.canary.requests = canaryRequests;
    serving.canary.errors = 0L;
    serving.canary.stableRequests = 3 * canaryRequests;
    serving.canary.stableErrors = 1L;
    serving.canary.message = "observing until 10:01:40";
    return serving;
  }

  @Test
  void aCanaryIsOneLineWithTheWeightBothVariantsAndTheDecision() {
    assertThat(CanaryProgress.line(observing(12)))
        .isEqualTo(
            "canary Observing at 25%: canary pvc://local-scratch/quickstart/final/bbb/ (sha256"
                + " 2b2b2b2b2b2b) 12 requests 0 errors | stable"
                + " pvc://local-scratch/quickstart/final/aaa/ (sha256 1a1a1a1a1a1a) 36 requests 1"
                + " errors | observing until 10:01:40");
    // Once the promotion completed, the stable counts are the replaced adapter's.
    ServingStatus rolledOut = observing(13);
    rolledOut.canary.decision = CanaryDecision.Promoted;
    rolledOut.adapterUri = rolledOut.canary.adapterUri;
    rolledOut.adapterDigest = RUN_2;
    assertThat(CanaryProgress.line(rolledOut))
        .contains("| stable (the adapter it replaced) 39 requests 1 errors |");
    assertThat(CanaryProgress.line(new ServingStatus())).isNull();
    assertThat(CanaryProgress.line(null)).isNull();
  }

  @Test
  void aLineIsPrintedOnlyWhenItChanges() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    try (CanaryProgress progress = new CanaryProgress()) {
      progress.show(new ServingStatus(), out);
      progress.show(observing(12), out);
      progress.show(observing(12), out);
      progress.show(observing(13), out);
      ServingStatus promoted = observing(13);
      promoted.canary.decision = CanaryDecision.Promoted;
      promoted.canary.message = "0 of 13 canary requests failed";
      progress.show(promoted, out);
      progress.show(promoted, out);
    }
    String[] lines = bytes.toString(StandardCharsets.UTF_8).split("\n");
    assertThat(lines).hasSize(3);
    assertThat(lines[0]).startsWith("canary Observing at 25%").contains("12 requests");
    assertThat(lines[1]).startsWith("canary Observing at 25%").contains("13 requests");
    assertThat(lines[2])
        .startsWith("canary Promoted at 25%")
        .endsWith("0 of 13 canary requests failed");
  }
}
