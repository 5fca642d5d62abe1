package io.kubetune.trainer.checkpoint;

import java.time.Instant;
import java.util.Map;

/**
 * A committed checkpoint: its step, folder key ({@code step-000000120/}) relative to the
 * checkpoints root, full URI and manifest.
 */
public record Checkpoint(long step, String folder, String uri, Manifest manifest) {

  public String trainingRevision() {
    return manifest.trainingRevision();
  }

  public Instant time() {
    return Instant.parse(manifest.time());
  }

  public Map<String, Double> metrics() {
    return manifest.metrics();
  }
}
