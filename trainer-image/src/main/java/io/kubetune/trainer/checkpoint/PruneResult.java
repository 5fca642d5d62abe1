package io.kubetune.trainer.checkpoint;

import java.util.SortedSet;

/**
 * What {@link CheckpointStore#prune} did: steps of valid checkpoints kept and deleted, invalid
 * checkpoints (manifest present, files bad) and orphan folders (no manifest) deleted, and the
 * number of stray objects removed inside kept folders (from commits that lost).
 */
public record PruneResult(
    SortedSet<Long> kept,
    SortedSet<Long> deleted,
    SortedSet<Long> deletedInvalid,
    SortedSet<Long> deletedOrphans,
    int strayObjectsDeleted) {}
