package io.kubetune.trainer.checkpoint;

/**
 * Outcome of {@link CheckpointStore#commit}: committed (with the checkpoint), or lost because a
 * manifest for that step already existed (then {@code checkpoint} is null and nothing committed was
 * changed).
 */
public record CommitResult(boolean committed, long step, Checkpoint checkpoint, String message) {}
