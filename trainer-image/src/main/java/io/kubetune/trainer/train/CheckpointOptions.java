package io.kubetune.trainer.train;

import io.kubetune.trainer.storage.StorageSettings;

/**
 * Where and how often the trainer checkpoints ({@code checkpoints.*} and {@code
 * job.trainingRevision} of the trainer config).
 *
 * @param uri checkpoints prefix ({@code s3://} or {@code file://})
 * @param trainingRevision only checkpoints of this revision are resumed
 */
public record CheckpointOptions(
    String uri,
    int everySteps,
    int keepLast,
    String trainingRevision,
    StorageSettings storage,
    CheckpointOwner owner) {

  public CheckpointOptions {
    if (everySteps < 1 || keepLast < 1) {
      throw new IllegalArgumentException("everySteps and keepLast must be >= 1");
    }
  }

  /** Without an owner: the location is not claimed (hand-written configs, tests). */
  public CheckpointOptions(
      String uri, int everySteps, int keepLast, String trainingRevision, StorageSettings storage) {
    this(uri, everySteps, keepLast, trainingRevision, storage, null);
  }
}
