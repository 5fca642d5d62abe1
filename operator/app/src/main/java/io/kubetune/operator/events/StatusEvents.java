package io.kubetune.operator.events;

import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.status.CheckpointWarnings;
import io.kubetune.operator.status.Conditions;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Which Events a status change deserves, as a pure function of the previous and the next status:
 * one per phase change (and per new failure message), one per failed rollout, one Warning per new
 * checkpoint warning. Each carries an occurrence key, so repeated observations of the same
 * transition collapse into the first Event.
 */
public final class StatusEvents {

  /** An Event to record: its reason, message and the key that makes it happen once. */
  public record Intent(Reason reason, String message, String occurrence) {}

  private StatusEvents() {}

  public static List<Intent> select(FineTuneJobStatus previous, FineTuneJobStatus next) {
    List<Intent> events = new ArrayList<>();
    transitions(previous, next, events);
    checkpointWarnings(previous, next, events);
    return events;
  }

  private static void transitions(
      FineTuneJobStatus previous, FineTuneJobStatus next, List<Intent> events) {
    Phase before = previous == null ? null : previous.phase;
    boolean phaseChanged = before != next.phase;
    boolean messageChanged = previous == null || !Objects.equals(previous.message, next.message);
    if (!phaseChanged && !(next.phase == Phase.Failed && messageChanged)) {
      return;
    }
    Reason reason =
        switch (next.phase) {
          case Failed ->
              Conditions.isTrue(next.conditions, Conditions.VALIDATED)
                  ? Reason.Failed
                  : Reason.InvalidSpec;
          case Queued -> Reason.Queued;
          case Running -> Reason.Started;
          case Suspended -> Reason.Suspended;
          case Succeeded -> Reason.Succeeded;
          case Serving -> Reason.Serving;
          default -> null;
        };
    String failedBefore =
        previous == null || previous.serving == null ? null : previous.serving.failedAdapterDigest;
    if (next.serving != null
        && next.serving.failedAdapterDigest != null
        && !next.serving.failedAdapterDigest.equals(failedBefore)) {
      Conditions.findMessage(next.conditions, Conditions.READY)
          .ifPresent(
              message ->
                  events.add(
                      new Intent(Reason.RolloutFailed, message, next.serving.failedAdapterDigest)));
    }
    if (reason != null) {
      // One Event per (revision, phase, attempt, message).
      String occurrence =
          next.trainingRevision + "|" + next.phase + "|" + next.attempts + "|" + next.message;
      events.add(new Intent(reason, next.message, occurrence));
    }
  }

  /**
   * One Warning per new entry of {@code status.checkpointWarnings} (a checkpoint skipped at resume
   * or one that failed to commit), keyed by (revision, step).
   */
  private static void checkpointWarnings(
      FineTuneJobStatus previous, FineTuneJobStatus next, List<Intent> events) {
    boolean sameRun =
        previous != null && Objects.equals(previous.trainingRevision, next.trainingRevision);
    for (CheckpointWarning warning :
        CheckpointWarnings.added(
            sameRun ? previous.checkpointWarnings : null, next.checkpointWarnings)) {
      Reason reason =
          CheckpointWarning.SKIPPED.equals(warning.reason)
              ? Reason.CheckpointSkipped
              : Reason.CheckpointFailed;
      events.add(new Intent(reason, warning.message, next.trainingRevision + "|" + warning.step));
    }
  }
}
