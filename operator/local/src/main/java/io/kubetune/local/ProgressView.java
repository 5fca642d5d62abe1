package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.EvalMetric;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Shows the trainer's progress lines as a progress bar: redrawn in place on a terminal, one line
 * per 10% otherwise (CI logs).
 */
final class ProgressView implements TrainerOutputListener {
  private final PrintStream out;
  private final boolean interactive;
  private int lastDecile = -1;
  private volatile TrainerEvent.Progress lastProgress;
  private volatile TrainerEvent.Eval lastEval;
  private volatile TrainerEvent.Done done;

  ProgressView(PrintStream out, boolean interactive) {
    this.out = out;
    this.interactive = interactive;
  }

  @Override
  public synchronized void onEvent(String podName, TrainerEvent event) {
    if (event instanceof TrainerEvent.Progress p) {
      lastProgress = p;
      render(p);
    } else if (event instanceof TrainerEvent.Eval e) {
      lastEval = e;
      endLine();
      out.println("  eval  " + describe(e.metrics()));
    } else if (event instanceof TrainerEvent.Done d) {
      done = d;
      endLine();
    }
    // other events (loaded, checkpoint, ...) are not shown
  }

  TrainerEvent.Progress lastProgress() {
    return lastProgress;
  }

  TrainerEvent.Eval lastEval() {
    return lastEval;
  }

  TrainerEvent.Done done() {
    return done;
  }

  private void render(TrainerEvent.Progress p) {
    long step = orZero(p.step());
    long total = Math.max(1, p.totalSteps() == null ? 1 : p.totalSteps());
    int width = 30;
    int filled = (int) Math.min(width, width * step / total);
    String bar = "#".repeat(filled) + ".".repeat(width - filled);
    String line =
        String.format(
            Locale.ROOT,
            "  [%s] step %d/%d  loss %.4f  %.0f tok/s  eta %s",
            bar,
            step,
            total,
            orZero(p.loss()),
            orZero(p.tokensPerSecond()),
            formatSeconds(orZero(p.etaSeconds())));
    if (interactive) {
      out.print("\r" + line);
      out.flush();
    } else {
      int decile = (int) (10 * step / total);
      if (decile != lastDecile) {
        lastDecile = decile;
        out.println(line);
      }
    }
  }

  private void endLine() {
    if (interactive && lastProgress != null) {
      out.println();
    }
  }

  static String formatSeconds(double seconds) {
    long s = Math.round(seconds);
    return s >= 60 ? (s / 60) + "m" + String.format(Locale.ROOT, "%02d", s % 60) + "s" : s + "s";
  }

  private static long orZero(Long value) {
    return value == null ? 0L : value;
  }

  private static double orZero(Double value) {
    return value == null ? 0.0 : value;
  }

  /**
   * An event's metrics as {@code name=value} pairs; a non-finite one (written as text) is left out.
   */
  static String describe(Map<String, Double> metrics) {
    StringBuilder sb = new StringBuilder();
    metrics.forEach(
        (name, value) -> {
          if (Double.isFinite(value)) {
            sb.append(name).append('=').append(format(value)).append("  ");
          }
        });
    return sb.toString().trim();
  }

  private static String format(double value) {
    return String.format(Locale.ROOT, "%.4g", value);
  }

  /**
   * Base vs tuned, one line per held-out metric the tuned evaluation has (metrics.json's {@code
   * initial} and {@code exported}/{@code final}), with the direction that counts as better; empty
   * when either side is missing.
   */
  static List<String> comparison(JsonNode base, JsonNode tuned) {
    List<String> lines = new ArrayList<>();
    if (base == null || tuned == null || !base.isObject() || !tuned.isObject()) {
      return lines;
    }
    lines.add(String.format(Locale.ROOT, "  %-14s %12s %12s", "held-out", "base", "tuned"));
    tuned
        .fields()
        .forEachRemaining(
            e -> {
              if (!e.getValue().isNumber()
                  || e.getKey().equals("step")
                  || e.getKey().equals("epoch")) {
                return;
              }
              JsonNode b = base.get(e.getKey());
              String better =
                  EvalMetric.ofKey(e.getKey())
                      .map(
                          metric ->
                              metric.higherIsBetter() ? "higher is better" : "lower is better")
                      .orElse("");
              lines.add(
                  String.format(
                          Locale.ROOT,
                          "  %-14s %12s %12s   %s",
                          e.getKey(),
                          b != null && b.isNumber() ? format(b.asDouble()) : "n/a",
                          format(e.getValue().asDouble()),
                          better)
                      .stripTrailing());
            });
    return lines;
  }

  /**
   * The numeric fields of a JSON object (metrics.json's evaluations) as {@code name=value} pairs.
   */
  static String describe(JsonNode node, String... skip) {
    StringBuilder sb = new StringBuilder();
    node.fields()
        .forEachRemaining(
            e -> {
              for (String s : skip) {
                if (s.equals(e.getKey())) {
                  return;
                }
              }
              if (e.getValue().isNumber()) {
                sb.append(e.getKey())
                    .append('=')
                    .append(format(e.getValue().asDouble()))
                    .append("  ");
              }
            });
    return sb.toString().trim();
  }
}
