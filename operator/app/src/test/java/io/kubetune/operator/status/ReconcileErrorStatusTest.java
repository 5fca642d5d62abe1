package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.InvalidFieldException;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import org.junit.jupiter.api.Test;

class ReconcileErrorStatusTest {
  static final String NOW = "2026-12-01T08:00:00Z";

  @Test
  void anEmptyStatusGetsAPhaseAConditionAndTheMessageWithItsCause() {
    Exception e = new IllegalStateException("outer", new java.io.IOException("disk\nfull"));
    FineTuneJobStatus status = ReconcileErrorStatus.of(null, e, 3L, NOW);
    assertThat(status.phase).isEqualTo(Phase.Pending);
    assertThat(status.observedGeneration).isEqualTo(3L);
    assertThat(Conditions.isTrue(status.conditions, Conditions.RECONCILE_ERROR)).isTrue();
    assertThat(Conditions.findMessage(status.conditions, Conditions.RECONCILE_ERROR))
        .contains("IllegalStateException: outer (cause: IOException: disk full)");
    assertThat(ReconcileErrorStatus.isBadInput(e)).isFalse();
  }

  @Test
  void badInputIsValidatedFalseWithTheFieldNotAReconcileError() {
    Exception e =
        new RuntimeException(
            "wrapped",
            new InvalidFieldException("spec.dataset.train", "is not UTF-8", "escape it"));
    FineTuneJobStatus status = ReconcileErrorStatus.of(null, e, 1L, NOW);
    assertThat(status.phase).isEqualTo(Phase.Failed);
    assertThat(Conditions.isTrue(status.conditions, Conditions.VALIDATED)).isFalse();
    assertThat(Conditions.findMessage(status.conditions, Conditions.VALIDATED))
        .contains("spec.dataset.train: is not UTF-8; fix: escape it");
    assertThat(Conditions.find(status.conditions, Conditions.RECONCILE_ERROR)).isNull();
    assertThat(ReconcileErrorStatus.isBadInput(e)).isTrue();
  }

  @Test
  void aRunningJobKeepsItsPhase() {
    FineTuneJobStatus running = new FineTuneJobStatus();
    running.phase = Phase.Running;
    FineTuneJobStatus status =
        ReconcileErrorStatus.of(running, new IllegalStateException("x".repeat(5000)), 1L, NOW);
    assertThat(status.phase).isEqualTo(Phase.Running);
    assertThat(status.message.length())
        .isLessThanOrEqualTo(FineTuneJobStatusAggregator.MAX_MESSAGE);
    assertThat(Conditions.find(running.conditions, Conditions.RECONCILE_ERROR))
        .as("the input is not mutated")
        .isNull();
  }
}
