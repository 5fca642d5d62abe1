package io.kubetune.trainer.checkpoint;

import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What a checkpoint records besides its files: the training revision that wrote it (a checkpoint is
 * only resumed by the same revision), when, and its metrics (finite values only).
 */
public record CheckpointMetadata(
    String trainingRevision, Instant time, Map<String, Double> metrics) {

  public CheckpointMetadata {
    if (trainingRevision == null || trainingRevision.isBlank()) {
      throw new IllegalArgumentException("trainingRevision must not be blank");
    }
    Objects.requireNonNull(time, "time");
    TreeMap<String, Double> copy = new TreeMap<>();
    if (metrics != null) {
      metrics.forEach(
          (name, value) -> {
            if (value == null || !Double.isFinite(value)) {
              throw new IllegalArgumentException(
                  "metric " + name + " = " + value + " is not a finite number");
            }
            copy.put(name, value);
          });
    }
    metrics = Map.copyOf(copy);
  }

  /** Metadata stamped with the current time. */
  public static CheckpointMetadata of(String trainingRevision, Map<String, Double> metrics) {
    return new CheckpointMetadata(trainingRevision, Instant.now(), metrics);
  }
}
