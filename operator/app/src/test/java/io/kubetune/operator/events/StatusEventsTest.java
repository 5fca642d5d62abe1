package io.kubetune.operator.events;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.support.Json;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Event selection is a pure function of (previous, next) status. */
class StatusEventsTest {

  @Test
  void onePerPhaseChangeAndNoneForTheSameStatus() {
    FineTuneJobStatus queued = status(Phase.Queued, "waiting");
    FineTuneJobStatus running = status(Phase.Running, "trainer pod p is running");

    assertThat(StatusEvents.select(queued, running))
        .extracting(StatusEvents.Intent::reason)
        .containsExactly(Reason.Started);
    assertThat(StatusEvents.select(running, Json.copy(running, FineTuneJobStatus.class))).isEmpty();
    // The occurrence names revision, phase, attempt and message: a repeat collapses into it.
    assertThat(StatusEvents.select(queued, running).get(0).occurrence())
        .isEqualTo("rev|Running|1|trainer pod p is running");
  }

  @Test
  void aNewFailureMessageIsANewEventInTheSamePhase() {
    FineTuneJobStatus failed = status(Phase.Failed, "exit 2");
    FineTuneJobStatus again = status(Phase.Failed, "exit 3");
    assertThat(StatusEvents.select(failed, again)).hasSize(1);
  }

  @Test
  void everyNewCheckpointWarningIsOneWarningEvent() {
    FineTuneJobStatus before = status(Phase.Running, "running");
    FineTuneJobStatus after = status(Phase.Running, "running");
    CheckpointWarning skipped = new CheckpointWarning();
    skipped.reason = CheckpointWarning.SKIPPED;
    skipped.step = 50L;
    skipped.message = "checkpoint at step 50 skipped";
    after.checkpointWarnings = new ArrayList<>(List.of(skipped));

    List<StatusEvents.Intent> events = StatusEvents.select(before, after);
    assertThat(events)
        .extracting(StatusEvents.Intent::reason)
        .containsExactly(Reason.CheckpointSkipped);
    assertThat(events.get(0).occurrence()).isEqualTo("rev|50");
    assertThat(StatusEvents.select(after, Json.copy(after, FineTuneJobStatus.class))).isEmpty();
  }

  private static FineTuneJobStatus status(Phase phase, String message) {
    FineTuneJobStatus status = new FineTuneJobStatus();
    status.phase = phase;
    status.message = message;
    status.trainingRevision = "rev";
    status.attempts = 1;
    status.conditions = new ArrayList<>();
    return status;
  }
}
