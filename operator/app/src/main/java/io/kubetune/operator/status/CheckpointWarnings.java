package io.kubetune.operator.status;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.operator.model.Json;
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
   * (see {@link CheckpointLedger#userUris}).
   */
  public static List<CheckpointWarning> fromLog(
      String logTail, UnaryOperator<String> uris, String now) {
    List<CheckpointWarning> seen = new ArrayList<>();
    for (JsonNode event : TrainerEvents.parse(logTail)) {
      String type = event.path("event").asText();
      if (type.equals("resume")) {
        String resumed = resumedFrom(event, uris);
        for (JsonNode skipped : event.path("skipped")) {
          if (!event.path("skipped").isArray() || !skipped.path("step").canConvertToLong()) {
            continue;
          }
          long step = skipped.path("step").asLong();
          String uri = skipped.hasNonNull("uri") ? uris.apply(skipped.get("uri").asText()) : null;
          String message =
              "checkpoint step "
                  + step
                  + (uri == null ? "" : " at " + uri)
                  + " was rejected at resume: "
                  + skipped.path("reason").asText("no reason given")
                  + "; "
                  + resumed;
          seen.add(warning(CheckpointWarning.SKIPPED, step, uri, message, now));
        }
      } else if (type.equals("warning")
          && CheckpointWarning.FAILED.equals(event.path("reason").asText())
          && event.path("step").canConvertToLong()) {
        long step = event.path("step").asLong();
        long failures = event.path("consecutiveFailures").asLong(1);
        JsonNode last = event.path("lastCheckpointStep");
        String inForce =
            last.canConvertToLong() && last.asLong() >= 0
                ? "the last committed checkpoint, step " + last.asLong() + ", stays in force"
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
                + event.path("message").asText("no reason given");
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

  private static String resumedFrom(JsonNode resume, UnaryOperator<String> uris) {
    if (!resume.hasNonNull("uri")) {
      return "no intact checkpoint was left, the run started over from step 0";
    }
    return "resumed from step "
        + resume.path("step").asLong()
        + " ("
        + uris.apply(resume.get("uri").asText())
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
