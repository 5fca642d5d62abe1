package io.kubetune.operator.status;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.api.v1alpha1.ProgressStatus;
import io.kubetune.operator.model.Json;
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
  public static ProgressStatus from(String logTail, ProgressStatus previous, String now) {
    if (logTail == null) {
      return previous;
    }
    JsonNode progress = null;
    JsonNode eval = null;
    JsonNode done = null;
    for (JsonNode event : TrainerEvents.parse(logTail)) {
      switch (event.path("event").asText()) {
        case "progress" -> progress = event;
        case "eval" -> eval = event;
        case "done" -> done = event;
        default -> {
          // other events are not shown in status
        }
      }
    }
    if (progress == null && done == null) {
      return previous;
    }
    ProgressStatus next = Json.copy(previous, ProgressStatus.class);
    if (next == null) {
      next = new ProgressStatus();
    }
    if (progress != null) {
      next.step = progress.path("step").asLong();
      next.totalSteps = progress.path("totalSteps").asLong();
      next.epoch = rounded(progress.path("epoch"), 3);
      next.loss = rounded(progress.path("loss"), 4);
      next.tokensPerSecond = rounded(progress.path("tokensPerSecond"), 0);
      next.etaSeconds = Math.round(progress.path("etaSeconds").asDouble());
    }
    if (eval != null && eval.has("eval_loss")) {
      next.evalLoss = rounded(eval.path("eval_loss"), 4);
    }
    if (done != null) {
      if (done.has("steps")) {
        next.step = done.path("steps").asLong();
      }
      next.etaSeconds = 0L;
      if (done.has("eval_loss")) {
        next.evalLoss = rounded(done.path("eval_loss"), 4);
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

  private static Double rounded(JsonNode value, int digits) {
    if (value == null || !value.isNumber()) {
      return null;
    }
    double scale = Math.pow(10, digits);
    return Math.round(value.asDouble() * scale) / scale;
  }
}
