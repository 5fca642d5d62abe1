package io.kubetune.trainer;

import io.kubetune.api.trainer.TrainerEvent;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Collects the trainer's events (one JSON object per line, parsed with the protocol's parser) as
 * they are written, and calls a listener for each on the writing thread, so a test can act at an
 * exact point of the run (e.g. stop the storage server while step 9 is reported, before the
 * checkpoint of step 10).
 */
public final class ProgressEvents extends OutputStream {
  private final List<TrainerEvent> events = new CopyOnWriteArrayList<>();
  private final Consumer<TrainerEvent> listener;
  private final ByteArrayOutputStream line = new ByteArrayOutputStream();

  public ProgressEvents(Consumer<TrainerEvent> listener) {
    this.listener = listener;
  }

  public ProgressEvents() {
    this(e -> {});
  }

  /** A stream to hand to {@code new ProgressReporter(...)}. */
  public PrintStream stream() {
    return new PrintStream(this, true, StandardCharsets.UTF_8);
  }

  /**
   * Parses and records one line; lines not starting with '{' are ignored, a JSON line that is no
   * event fails the test. Also for lines read from a pipe.
   */
  public void accept(String text) {
    if (!text.startsWith("{")) {
      return;
    }
    TrainerEvent event =
        TrainerEvent.parse(text)
            .orElseThrow(() -> new IllegalStateException("not a trainer event: " + text));
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

  public List<TrainerEvent> all() {
    return List.copyOf(events);
  }

  /** Events of one kind, in order. */
  public <T extends TrainerEvent> List<T> of(Class<T> kind) {
    return events.stream().filter(kind::isInstance).map(kind::cast).toList();
  }

  /** Highest {@code step} of the {@code progress} events so far, or 0. */
  public long lastProgressStep() {
    return of(TrainerEvent.Progress.class).stream()
        .mapToLong(TrainerEvent.Progress::step)
        .max()
        .orElse(0);
  }
}
