package io.kubetune.trainer.checkpoint;

import java.util.List;
import java.util.Optional;

/**
 * Result of {@link CheckpointStore#scan}: the newest intact checkpoint (if any) and the newer
 * folders skipped on the way, newest first, each with its reason (for logs and the job status).
 */
public record Scan(Optional<Checkpoint> latest, List<Skipped> skipped) {
  public Scan {
    skipped = List.copyOf(skipped);
  }
}
