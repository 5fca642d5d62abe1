package io.kubetune.trainer.train;

import io.kubetune.api.trainer.TrainerEvent;
import java.io.PrintStream;

/**
 * Writes the trainer's events to stdout, one JSON object per line, through the protocol's one
 * writer ({@link TrainerEvent#toLine}); the operator and the local mode read them with its parser.
 */
public final class ProgressReporter {
  private final PrintStream out;

  public ProgressReporter(PrintStream out) {
    this.out = out;
  }

  public static ProgressReporter silent() {
    return new ProgressReporter(null);
  }

  public void emit(TrainerEvent event) {
    if (out == null) {
      return;
    }
    out.println(TrainerEvent.toLine(event));
    out.flush();
  }
}
