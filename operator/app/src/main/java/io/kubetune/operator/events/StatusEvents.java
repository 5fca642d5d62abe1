package io.kubetune.operator.events;

import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanaryStatus;
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
 * checkpoint warning, one per canary started and per canary decision. Each carries an occurrence
 * key, so repeated observations of the same transition collapse into the first Event.
 */
public final class StatusEvents {

  /** An Event to record: its reason, message and the key that makes it happen once. */
  public record Intent(Reason reason, String message, String occurrence) {}

  private StatusEvents() {}

  public static List<Intent> select(FineTuneJobStatus previous, FineTuneJobStatus next) {
    List<Intent> events = new ArrayList<>();
    transitions(previous, next, events);
    checkpointWarnings(previous, next, events);
    canary(previous, next, events);
    return events;
  }

  /** One Event per canary started and per canary decision, keyed by (digest, start, decision). */
  private static void canary(
      FineTuneJobStatus previous, FineTuneJobStatus next, List<Intent> events) {
    CanaryStatus before =
        previous == null || previous.serving == null ? null : previous.serving.canary;
    CanaryStatus after = next.serving == null ? null : next.serving.canary;
    if (after == null
        || after.decision == null
        || (before != null
            && Objects.equals(before.adapterDigest, after.adapterDigest)
            && Objects.equals(before.startedAt, after.startedAt)
            && before.decision == after.decision)) {
      return;
    }
    Reason reason =
        switch (after.decision) {
          case Observing -> Reason.CanaryStarted;
          case Promoted ->
              Objects.requireNonNullElse(after.requests, 0L) == 0
                  ? Reason.CanaryPromotedUnobserved
                  : Reason.CanaryPromoted;
          case RolledBack -> Reason.CanaryRolledBack;
        };
    String message =
        after.decision == CanaryDecision.Observing
            ? "canary " + after.adapterUri + " answers " + after.weight + "% of requests"
            : "canary " + after.adapterUri + ": " + after.message;
    events.add(
        new Intent(
            reason, message, after.adapterDigest + "|" + after.startedAt + "|" + after.decision));
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
