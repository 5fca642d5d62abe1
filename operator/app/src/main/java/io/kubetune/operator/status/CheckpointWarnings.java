package io.kubetune.operator.status;

import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.operator.support.Json;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;

/**
 * {@code status.checkpointWarnings}: checkpoints the trainer rejected at resume (the {@code
 * skipped} list of its {@code resume} line) or could not write (its {@code warning} line with
 * reason {@code CheckpointFailed}), see docs/trainer.md. Like the checkpoint ledger, observations
 * of the current pod's log tail are merged into what status already holds. Pure: no client, no
 * clock.
 *
 * <p>Rules: one entry per (reason, step), the first observation kept (its {@code time} is when the
 * operator first saw it); ordered by step, then reason; the {@link #MAX_ENTRIES} highest steps are
 * kept. Ordering and bounding by step (not by arrival) keep a re-read log from changing anything:
 * an entry that fell out stays out.
 */
public final class CheckpointWarnings {
  /** Entries kept in {@code status.checkpointWarnings}. */
  public static final int MAX_ENTRIES = 10;

  private static final Comparator<CheckpointWarning> ORDER =
      Comparator.comparing((CheckpointWarning w) -> w.step).thenComparing(w -> w.reason);

  private CheckpointWarnings() {}

  /**
   * The warnings a log tail reports, in log order: one per {@code skipped} entry of a {@code
   * resume} line, one per {@code CheckpointFailed} warning line. URIs pass through {@code uris}
   * (see {@link io.kubetune.operator.model.FineTuneJobModel#userCheckpointUris}).
   */
  public static List<CheckpointWarning> fromLog(
      List<TrainerEvent> events, UnaryOperator<String> uris, String now) {
    List<CheckpointWarning> seen = new ArrayList<>();
    for (TrainerEvent event : events) {
      if (event instanceof TrainerEvent.Resume resume) {
        String resumed = resumedFrom(resume, uris);
        for (TrainerEvent.Skipped skipped : resume.skipped()) {
          if (skipped.step() == null) {
            continue;
          }
          long step = skipped.step();
          String uri = skipped.uri() == null ? null : uris.apply(skipped.uri());
          String message =
              "checkpoint step "
                  + step
                  + (uri == null ? "" : " at " + uri)
                  + " was rejected at resume: "
                  + (skipped.reason() == null ? "no reason given" : skipped.reason())
                  + "; "
                  + resumed;
          seen.add(warning(CheckpointWarning.SKIPPED, step, uri, message, now));
        }
      } else if (event instanceof TrainerEvent.Warning warning
          && TrainerEvent.Warning.CHECKPOINT_FAILED.equals(warning.reason())
          && warning.step() != null) {
        long step = warning.step();
        long failures = warning.consecutiveFailures() == null ? 1 : warning.consecutiveFailures();
        Long last = warning.lastCheckpointStep();
        String inForce =
            last != null && last >= 0
                ? "the last committed checkpoint, step " + last + ", stays in force"
                : "no checkpoint was committed yet";
        String message =
            "checkpoint of step "
                + step
                + " could not be written ("
                + failures
                + (failures == 1 ? " failure" : " failures")
                + " in a row); training goes on and "
                + inForce
                + ": "
                + (warning.message() == null ? "no reason given" : warning.message());
        seen.add(warning(CheckpointWarning.FAILED, step, null, message, now));
      }
    }
    return seen;
  }

  /**
   * Merges observed warnings into those status holds; null when there are none, and the same
   * observations again change nothing.
   */
  public static List<CheckpointWarning> merge(
      List<CheckpointWarning> previous, List<CheckpointWarning> observed) {
    Map<String, CheckpointWarning> byKey = new LinkedHashMap<>();
    for (List<CheckpointWarning> list : List.of(nullSafe(previous), observed)) {
      for (CheckpointWarning w : list) {
        if (w != null && w.step != null && w.reason != null) {
          byKey.putIfAbsent(key(w), Json.copy(w, CheckpointWarning.class));
        }
      }
    }
    if (byKey.isEmpty()) {
      return previous;
    }
    List<CheckpointWarning> sorted = byKey.values().stream().sorted(ORDER).toList();
    return new ArrayList<>(sorted.subList(Math.max(0, sorted.size() - MAX_ENTRIES), sorted.size()));
  }

  /** The entries of {@code next} that {@code previous} does not have: each is worth an Event. */
  public static List<CheckpointWarning> added(
      List<CheckpointWarning> previous, List<CheckpointWarning> next) {
    Set<String> known =
        nullSafe(previous).stream().map(CheckpointWarnings::key).collect(Collectors.toSet());
    return nullSafe(next).stream().filter(w -> !known.contains(key(w))).toList();
  }

  private static String resumedFrom(TrainerEvent.Resume resume, UnaryOperator<String> uris) {
    if (resume.uri() == null) {
      return "no intact checkpoint was left, the run started over from step 0";
    }
    return "resumed from step "
        + (resume.step() == null ? 0 : resume.step())
        + " ("
        + uris.apply(resume.uri())
        + ")";
  }

  private static CheckpointWarning warning(
      String reason, long step, String uri, String message, String now) {
    CheckpointWarning w = new CheckpointWarning();
    w.reason = reason;
    w.step = step;
    w.uri = uri;
    w.message = FineTuneJobStatusAggregator.truncate(message);
    w.time = now;
    return w;
  }

  private static String key(CheckpointWarning w) {
    return w.reason + "|" + w.step;
  }

  private static <T> List<T> nullSafe(List<T> list) {
    return list == null ? List.of() : list;
  }
}
