package io.kubetune.operator.status;

import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.ProgressStatus;
import io.kubetune.operator.support.Json;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Reads training progress from the tail of the trainer's log. The trainer prints one JSON object
 * per line ({@code {"event":"progress","step":..,"totalSteps":..,"loss":..}}, {@code eval}, {@code
 * done}; see docs/trainer.md); the operator reads the last lines through the pods/log API, which
 * needs no storage credentials and no API access for the trainer.
 */
public final class TrainerProgress {
  private TrainerProgress() {}

  /**
   * The progress the log shows, or {@code previous} when the log has no progress line. {@code
   * updatedAt} moves only when the step does, so re-reading an unchanged log changes nothing.
   */
  public static ProgressStatus from(
      List<TrainerEvent> events, ProgressStatus previous, String now) {
    // other events are not shown in status
    TrainerEvent.Progress progress =
        TrainerEvent.last(events, TrainerEvent.Progress.class).orElse(null);
    TrainerEvent.Eval eval = TrainerEvent.last(events, TrainerEvent.Eval.class).orElse(null);
    TrainerEvent.Done done = TrainerEvent.last(events, TrainerEvent.Done.class).orElse(null);
    if (progress == null && done == null) {
      return previous;
    }
    ProgressStatus next = Json.copy(previous, ProgressStatus.class);
    if (next == null) {
      next = new ProgressStatus();
    }
    if (progress != null) {
      next.step = orZero(progress.step());
      next.totalSteps = orZero(progress.totalSteps());
      next.epoch = rounded(progress.epoch(), 3);
      next.loss = rounded(progress.loss(), 4);
      next.tokensPerSecond = rounded(progress.tokensPerSecond(), 0);
      next.etaSeconds =
          Math.round(progress.etaSeconds() == null ? 0.0 : progress.etaSeconds().doubleValue());
    }
    if (eval != null && eval.metrics().containsKey("eval_loss")) {
      next.evalLoss = rounded(eval.metrics().get("eval_loss"), 4);
    }
    if (done != null) {
      if (done.steps() != null) {
        next.step = done.steps();
      }
      next.etaSeconds = 0L;
      if (done.metrics().containsKey("eval_loss")) {
        next.evalLoss = rounded(done.metrics().get("eval_loss"), 4);
      }
    }
    next.eta = formatDuration(next.etaSeconds);
    next.summary = summary(next.step, next.totalSteps);
    boolean stepMoved = previous == null || !Objects.equals(previous.step, next.step);
    next.updatedAt = stepMoved ? now : previous.updatedAt;
    return next;
  }

  static String summary(Long step, Long total) {
    if (step == null || total == null || total <= 0) {
      return null;
    }
    return String.format(Locale.ROOT, "%d/%d (%d%%)", step, total, 100 * step / total);
  }

  static String formatDuration(Long seconds) {
    if (seconds == null) {
      return null;
    }
    long s = Math.max(0, seconds);
    if (s >= 3600) {
      return String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60);
    }
    if (s >= 60) {
      return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
    }
    return s + "s";
  }

  /** Null for a missing or non-finite number (the trainer writes NaN as a string). */
  private static Double rounded(Double value, int digits) {
    if (value == null || !Double.isFinite(value)) {
      return null;
    }
    double scale = Math.pow(10, digits);
    return Math.round(value * scale) / scale;
  }

  private static long orZero(Long value) {
    return value == null ? 0L : value;
  }
}
