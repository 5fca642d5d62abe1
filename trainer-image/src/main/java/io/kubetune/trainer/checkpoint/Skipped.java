package io.kubetune.trainer.checkpoint;

/** A checkpoint folder passed over while looking for the newest intact one, with the reason. */
public record Skipped(long step, String reason) {
  @Override
  public String toString() {
    return "step " + step + ": " + reason;
  }
}
