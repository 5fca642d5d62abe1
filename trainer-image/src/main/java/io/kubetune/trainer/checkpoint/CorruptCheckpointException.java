package io.kubetune.trainer.checkpoint;

import java.io.IOException;

/** A checkpoint failed verification (missing file, wrong size or SHA-256, bad manifest). */
public class CorruptCheckpointException extends IOException {
  private final long step;
  private final String reason;

  public CorruptCheckpointException(long step, String reason) {
    super("checkpoint step " + step + " is not intact: " + reason);
    this.step = step;
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }

  public long step() {
    return step;
  }
}
