package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.checkpoint.Skipped;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The resume half of loading: puts the newest usable checkpoint's tensors, AdamW moments and {@link
 * RunState} back and emits the {@code resume} event; or, when every checkpoint was rejected, says
 * so (the run starts over) with the reasons.
 */
final class CheckpointRestore {
  private CheckpointRestore() {}

  /**
   * Restores from {@code checkpointer} (null: no checkpoints) into the trainable arrays, the
   * optimizer and {@code state}.
   *
   * @return whether a checkpoint was restored
   * @throws IOException storage unreachable beyond its retries
   */
  static boolean restore(
      Checkpointer checkpointer,
      Map<String, NDArray> trainable,
      AdamW optimizer,
      RunState state,
      ProgressReporter progress)
      throws IOException {
    Checkpointer.Restore restore =
        checkpointer == null
            ? new Checkpointer.Restore(Optional.empty(), List.of())
            : checkpointer.restoreLatest();
    Optional<Checkpointer.Restored> restored = restore.restored();
    if (restored.isPresent()) {
      Checkpointer.Restored r = restored.get();
      restoreTensors(r, trainable, optimizer);
      // Data order and LR schedule depend only on (seed, step), so nothing else is needed.
      state.restore(r.state());
      System.err.println("resuming from step " + state.step + " of " + r.checkpoint().uri());
      progress.emit(
          new TrainerEvent.Resume(
              state.step,
              r.checkpoint().uri(),
              r.checkpoint().manifest().time(),
              r.checkpoint().metrics(),
              skippedForEvent(restore.skipped())));
      return true;
    }
    if (!damaged(restore.skipped()).isEmpty()) {
      // Every checkpoint was rejected: say so (the run starts over) with the reasons.
      System.err.println(
          "no usable checkpoint at "
              + checkpointer.options().uri()
              + ": all "
              + damaged(restore.skipped()).size()
              + " were rejected (see above); starting over from step 0");
      progress.emit(
          new TrainerEvent.Resume(0L, null, null, null, skippedForEvent(restore.skipped())));
    }
    return false;
  }

  /**
   * Skipped folders that were damaged or partial; folders of a superseded training revision are
   * expected after a restart and stay out of the {@code resume} event (stderr still lists them).
   */
  private static List<Skipped> damaged(List<Skipped> skipped) {
    return skipped.stream()
        .filter(s -> !s.reason().startsWith(CheckpointStore.OTHER_REVISION))
        .toList();
  }

  /** {@code resume}'s {@code skipped}: each rejected checkpoint's step, URI and reason. */
  private static List<TrainerEvent.Skipped> skippedForEvent(List<Skipped> skipped) {
    return damaged(skipped).stream()
        .map(s -> new TrainerEvent.Skipped(s.step(), s.uri(), s.reason()))
        .toList();
  }

  /**
   * Copies a checkpoint's tensors into the existing trainable arrays (they are referenced by the
   * model, and DJL cannot replace a shaped parameter's array) and hands the moments to AdamW.
   */
  private static void restoreTensors(
      Checkpointer.Restored r, Map<String, NDArray> trainable, AdamW optimizer) {
    copyWeights(r.checkpoint().uri(), r.weights(), trainable);
    optimizer.restore(r.state().optimizerStep(), r.firstMoment(), r.secondMoment());
  }

  /** Copies a checkpoint's tensors (from {@code uri}) into the existing trainable arrays. */
  static void copyWeights(
      String uri, Map<String, Safetensors.FloatTensor> weights, Map<String, NDArray> trainable) {
    if (!weights.keySet().equals(trainable.keySet())) {
      throw new IllegalStateException(
          "checkpoint "
              + uri
              + " holds tensors "
              + weights.keySet()
              + ", this run trains "
              + trainable.keySet());
    }
    for (Map.Entry<String, NDArray> e : trainable.entrySet()) {
      Safetensors.FloatTensor t = weights.get(e.getKey());
      if (!new Shape(t.shape()).equals(e.getValue().getShape())) {
        throw new IllegalStateException(
            "checkpoint tensor " + e.getKey() + " has shape " + new Shape(t.shape()));
      }
      e.getValue().set(FloatBuffer.wrap(t.data()));
    }
  }
}
