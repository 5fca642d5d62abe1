package io.kubetune.trainer.checkpoint;

/**
 * A checkpoint folder passed over while looking for the newest intact one: its step, folder URI
 * (e.g. {@code s3://bucket/run/step-000000120/}) and the reason.
 */
public record Skipped(long step, String uri, String reason) {
  @Override
  public String toString() {
    return "step " + step + " at " + uri + ": " + reason;
  }
}
