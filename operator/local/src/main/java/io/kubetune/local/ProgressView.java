package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintStream;
import java.util.Locale;

/**
 * Shows the trainer's progress lines as a progress bar: redrawn in place on a terminal, one line
 * per 10% otherwise (CI logs).
 */
final class ProgressView implements TrainerOutputListener {
  private final PrintStream out;
  private final boolean interactive;
  private int lastDecile = -1;
  private volatile JsonNode lastProgress;
  private volatile JsonNode lastEval;
  private volatile JsonNode done;

  ProgressView(PrintStream out, boolean interactive) {
    this.out = out;
    this.interactive = interactive;
  }

  @Override
  public synchronized void onEvent(String podName, JsonNode event) {
    switch (event.path("event").asText()) {
      case "progress" -> {
        lastProgress = event;
        render(event);
      }
      case "eval" -> {
        lastEval = event;
        endLine();
        out.println("  eval  " + describe(event, "step", "event"));
      }
      case "done" -> {
        done = event;
        endLine();
      }
      default -> {
        // other events (start, checkpoint, ...) are not shown
      }
    }
  }

  JsonNode lastProgress() {
    return lastProgress;
  }

  JsonNode lastEval() {
    return lastEval;
  }

  JsonNode done() {
    return done;
  }

  private void render(JsonNode p) {
    long step = p.path("step").asLong();
    long total = Math.max(1, p.path("totalSteps").asLong(1));
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
            p.path("loss").asDouble(),
            p.path("tokensPerSecond").asDouble(),
            formatSeconds(p.path("etaSeconds").asDouble()));
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
                    .append(String.format(Locale.ROOT, "%.4g", e.getValue().asDouble()))
                    .append("  ");
              }
            });
    return sb.toString().trim();
  }
}
