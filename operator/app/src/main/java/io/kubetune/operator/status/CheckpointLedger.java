package io.kubetune.operator.status;

import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.CheckpointRecord;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.operator.support.Json;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * The checkpoint ledger of a run in status: {@code checkpoints[]}, {@code latestCheckpoint} and
 * {@code bestCheckpoint}. The trainer prints a {@code checkpoint} line after each commit and a
 * {@code resume} line when it continues from one (docs/trainer.md); the operator sees only the tail
 * of the current pod's log, so observations are merged into what status already holds instead of
 * being recomputed. Pure: no client, no clock.
 *
 * <p>Rules: one entry per step (the first observation keeps its time; missing metrics are filled in
 * by a later one); {@code checkpoints[]} is the newest {@link #MAX_ENTRIES}, oldest first; {@code
 * latestCheckpoint} is the highest step ever seen in this run, so an older line never moves it
 * back; {@code bestCheckpoint} is the best by the run's evaluation metric among every checkpoint
 * seen with that metric (ties go to the newer step, as in the trainer's retention), kept even when
 * it has left {@code checkpoints[]}. A new training revision starts an empty ledger (the status
 * aggregator clears it).
 *
 * <p>The one exception to "never moves back": a {@code resume} line with {@code skipped} says the
 * trainer rejected every checkpoint newer than the one it resumed from (a checksum mismatch, a
 * missing manifest). Every entry above the resumed step is then marked {@code rejected} (with the
 * trainer's reason) and is never {@code latestCheckpoint} or {@code bestCheckpoint}, so {@code
 * latestCheckpoint} becomes the checkpoint actually resumed from (none when the run started over).
 * Entries are marked, not removed: {@code checkpoints[]} keeps the history and never shrinks (the
 * status is written as a JSON patch, whose index-based removals fail on a primary resource the
 * informer has not refreshed yet). The trainer prints {@code resume} before its first step, so a
 * checkpoint the pod commits later for a rejected step (an intact new folder) replaces the rejected
 * entry.
 */
public final class CheckpointLedger {
  /** Entries kept in {@code status.checkpoints}. */
  public static final int MAX_ENTRIES = 10;

  /**
   * The three ledger fields; all null when no checkpoint was seen.
   *
   * @param checkpoints the newest entries, oldest first
   * @param latest the entry with the highest step
   * @param best the best entry by the evaluation metric, or null when none has it
   */
  public record Ledger(
      List<CheckpointRecord> checkpoints, CheckpointRecord latest, CheckpointRecord best) {

    public static Ledger of(FineTuneJobStatus status) {
      return new Ledger(status.checkpoints, status.latestCheckpoint, status.bestCheckpoint);
    }

    public void writeTo(FineTuneJobStatus status) {
      status.checkpoints = checkpoints;
      status.latestCheckpoint = latest;
      status.bestCheckpoint = best;
    }
  }

  private CheckpointLedger() {}

  /**
   * The checkpoints a log tail's events report ({@code checkpoint} and {@code resume}), in log
   * order. {@code time} is the line's own time when it has one, else {@code now}; URIs pass through
   * {@code uris} (see {@link io.kubetune.operator.model.FineTuneJobModel#userCheckpointUris}).
   */
  public static List<CheckpointRecord> fromLog(
      List<TrainerEvent> events, UnaryOperator<String> uris, String now) {
    List<CheckpointRecord> seen = new ArrayList<>();
    for (TrainerEvent event : events) {
      Long step;
      String uri;
      String time;
      Map<String, Double> metrics;
      if (event instanceof TrainerEvent.Checkpoint c) {
        step = c.step();
        uri = c.uri();
        time = c.time();
        metrics = c.metrics();
      } else if (event instanceof TrainerEvent.Resume r) {
        if (r.uri() == null) {
          continue; // every checkpoint was rejected: the run started over, from no checkpoint
        }
        step = r.step();
        uri = r.uri();
        time = r.time();
        metrics = r.metrics();
      } else {
        continue;
      }
      if (step == null || step < 0) {
        continue;
      }
      CheckpointRecord record = new CheckpointRecord();
      record.step = step;
      record.uri = uri == null ? null : uris.apply(uri);
      record.time = rfc3339(time).orElse(now);
      record.metrics = finite(metrics);
      seen.add(record);
    }
    return seen;
  }

  /**
   * A {@code resume} line with a non-empty {@code skipped} list: the step the trainer resumed from
   * (0 when none was left and the run started over) and why it rejected each newer checkpoint, by
   * step.
   */
  public record Rejection(long resumedFrom, Map<Long, String> reasons) {
    String reasonFor(long step) {
      return reasons.getOrDefault(
          step, "not found when the trainer resumed from step " + resumedFrom);
    }
  }

  /** The last {@link Rejection} of a log tail's events, if it has one. */
  public static Optional<Rejection> rejectionAtResume(List<TrainerEvent> events) {
    Optional<Rejection> last = Optional.empty();
    for (TrainerEvent event : events) {
      if (!(event instanceof TrainerEvent.Resume resume)
          || resume.skipped().isEmpty()
          || resume.step() == null
          || resume.step() < 0) {
        continue;
      }
      Map<Long, String> reasons = new TreeMap<>();
      for (TrainerEvent.Skipped s : resume.skipped()) {
        if (s.step() != null) {
          reasons.putIfAbsent(
              s.step(),
              FineTuneJobStatusAggregator.truncate(
                  s.reason() == null ? "no reason given" : s.reason()));
        }
      }
      last = Optional.of(new Rejection(resume.step(), reasons));
    }
    return last;
  }

  /** Merges observed checkpoints into the ledger; the same observations again change nothing. */
  public static Ledger merge(Ledger previous, List<CheckpointRecord> observed, EvalMetric metric) {
    return merge(previous, Optional.empty(), observed, metric);
  }

  /**
   * Merges observed checkpoints into the ledger after marking every entry above the step a {@code
   * rejection} resumed from as rejected (see {@link #rejectionAtResume}); an observed checkpoint of
   * a rejected step replaces that entry. The same observations again change nothing.
   */
  public static Ledger merge(
      Ledger previous,
      Optional<Rejection> rejection,
      List<CheckpointRecord> observed,
      EvalMetric metric) {
    TreeMap<Long, CheckpointRecord> bySteps = new TreeMap<>();
    Stream.of(
            previous.checkpoints() == null
                ? Stream.<CheckpointRecord>empty()
                : previous.checkpoints().stream(),
            Stream.of(previous.latest(), previous.best()))
        .flatMap(s -> s)
        .filter(r -> r != null && r.step != null)
        .forEach(
            r ->
                bySteps.merge(
                    r.step, Json.copy(r, CheckpointRecord.class), CheckpointLedger::combine));
    rejection.ifPresent(
        r ->
            bySteps
                .tailMap(r.resumedFrom(), false)
                .values()
                .forEach(entry -> entry.rejected = r.reasonFor(entry.step)));
    observed.stream()
        .filter(r -> r != null && r.step != null)
        .forEach(
            r ->
                bySteps.merge(
                    r.step,
                    Json.copy(r, CheckpointRecord.class),
                    (held, seen) -> held.rejected != null ? seen : combine(held, seen)));
    if (bySteps.isEmpty()) {
      return previous;
    }
    List<CheckpointRecord> all = new ArrayList<>(bySteps.values());
    List<CheckpointRecord> newest =
        new ArrayList<>(all.subList(Math.max(0, all.size() - MAX_ENTRIES), all.size()));
    List<CheckpointRecord> usable = all.stream().filter(r -> r.rejected == null).toList();
    CheckpointRecord latest =
        usable.isEmpty() ? null : Json.copy(usable.get(usable.size() - 1), CheckpointRecord.class);
    CheckpointRecord best =
        best(usable, metric).map(r -> Json.copy(r, CheckpointRecord.class)).orElse(null);
    return new Ledger(newest, latest, best);
  }

  /** Best by {@code metric} in its direction; ties go to the newer step. */
  static Optional<CheckpointRecord> best(List<CheckpointRecord> records, EvalMetric metric) {
    Comparator<CheckpointRecord> byValue =
        Comparator.comparingDouble((CheckpointRecord r) -> r.metrics.get(metric.key()));
    if (!metric.higherIsBetter()) {
      byValue = byValue.reversed();
    }
    return records.stream()
        .filter(r -> r.metrics != null && r.metrics.get(metric.key()) != null)
        .filter(r -> Double.isFinite(r.metrics.get(metric.key())))
        .max(byValue.thenComparingLong(r -> r.step));
  }

  /** Same step: keep what was seen first, fill in what it lacked. */
  private static CheckpointRecord combine(CheckpointRecord first, CheckpointRecord later) {
    if (first.uri == null) {
      first.uri = later.uri;
    }
    if (first.time == null) {
      first.time = later.time;
    }
    if ((first.metrics == null || first.metrics.isEmpty()) && later.metrics != null) {
      first.metrics = later.metrics;
    }
    return first;
  }

  /** The finite metrics, sorted by name; null when there are none. */
  private static Map<String, Double> finite(Map<String, Double> reported) {
    Map<String, Double> metrics = new TreeMap<>();
    reported.forEach(
        (name, value) -> {
          if (Double.isFinite(value)) {
            metrics.put(name, value);
          }
        });
    return metrics.isEmpty() ? null : metrics;
  }

  private static Optional<String> rfc3339(String text) {
    if (text == null || text.isBlank()) {
      return Optional.empty();
    }
    try {
      return Optional.of(Instant.parse(text).truncatedTo(ChronoUnit.SECONDS).toString());
    } catch (RuntimeException notInstant) {
      try {
        return Optional.of(
            OffsetDateTime.parse(text).toInstant().truncatedTo(ChronoUnit.SECONDS).toString());
      } catch (RuntimeException notOffset) {
        return Optional.empty();
      }
    }
  }
}
