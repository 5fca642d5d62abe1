package io.kubetune.trainer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Collects the trainer's JSON progress lines (one object per line) as they are written, and calls a
 * listener for each on the writing thread, so a test can act at an exact point of the run (e.g.
 * stop the storage server while step 9 is reported, before the checkpoint of step 10).
 */
public final class ProgressEvents extends OutputStream {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final List<JsonNode> events = new CopyOnWriteArrayList<>();
  private final Consumer<JsonNode> listener;
  private final ByteArrayOutputStream line = new ByteArrayOutputStream();

  public ProgressEvents(Consumer<JsonNode> listener) {
    this.listener = listener;
  }

  public ProgressEvents() {
    this(e -> {});
  }

  /** A stream to hand to {@code new ProgressReporter(...)}. */
  public PrintStream stream() {
    return new PrintStream(this, true, StandardCharsets.UTF_8);
  }

  /** Parses and records one line; non-JSON lines are ignored. Also for lines read from a pipe. */
  public void accept(String text) {
    if (!text.startsWith("{")) {
      return;
    }
    JsonNode event;
    try {
      event = JSON.readTree(text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    events.add(event);
    listener.accept(event);
  }

  @Override
  public synchronized void write(int b) {
    if (b == '\n') {
      String text = line.toString(StandardCharsets.UTF_8).strip();
      line.reset();
      accept(text);
    } else {
      line.write(b);
    }
  }

  public List<JsonNode> all() {
    return List.copyOf(events);
  }

  /** Events named {@code name}, in order. */
  public List<JsonNode> named(String name) {
    return events.stream().filter(e -> name.equals(e.path("event").asText())).toList();
  }

  /** Highest {@code step} of the {@code progress} events so far, or 0. */
  public long lastProgressStep() {
    return named("progress").stream().mapToLong(e -> e.get("step").asLong()).max().orElse(0);
  }

  public static boolean is(JsonNode event, String name) {
    return name.equals(event.path("event").asText());
  }
}
