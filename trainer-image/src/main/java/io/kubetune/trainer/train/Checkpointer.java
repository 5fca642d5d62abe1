package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.checkpoint.Checkpoint;
import io.kubetune.trainer.checkpoint.CheckpointMetadata;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.checkpoint.CommitResult;
import io.kubetune.trainer.checkpoint.Scan;
import io.kubetune.trainer.checkpoint.Skipped;
import io.kubetune.trainer.safetensors.Safetensors;
import io.kubetune.trainer.storage.NoSuchBucketException;
import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.ObjectStores;
import io.kubetune.trainer.storage.TrainingStaging;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * Writes and restores the training checkpoints of one run through a {@link CheckpointStore}: the
 * trainable tensors ({@value #WEIGHTS}), the AdamW moments ({@value #OPTIMIZER}, {@code
 * first/<name>} and {@code second/<name>}) and the loop state ({@value #STATE}). Files are written
 * to a local folder first and then committed (manifest last).
 */
public final class Checkpointer implements AutoCloseable {
  /** Reason prefix of a checkpoint whose checksums match but whose files cannot be parsed. */
  static final String INTACT_BUT_UNREADABLE = "intact but unreadable: ";

  public static final String WEIGHTS = "trainable.safetensors";
  public static final String OPTIMIZER = "optimizer.safetensors";
  public static final String STATE = "trainer_state.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * What the loop needs to continue exactly where a checkpoint left off. {@code step} and {@code
   * optimizerStep} are equal today; both are kept so accumulation changes cannot go unnoticed.
   */
  public record TrainerState(
      long step,
      long optimizerStep,
      double epoch,
      long seed,
      long tokens,
      FineTuner.Evaluation initial,
      FineTuner.Evaluation best,
      int evalsWithoutImprovement,
      boolean stoppedEarly,
      List<FineTuner.Evaluation> history,
      List<double[]> trainLoss) {}

  /** A restored checkpoint: its state and tensors, read from the local copy. */
  public record Restored(
      Checkpoint checkpoint,
      TrainerState state,
      Map<String, Safetensors.FloatTensor> weights,
      Map<String, Safetensors.FloatTensor> firstMoment,
      Map<String, Safetensors.FloatTensor> secondMoment) {}

  private final CheckpointOptions options;
  private final ObjectStore objectStore;
  private final CheckpointStore store;
  private final Path scratch;
  private final PrintStream log;

  /**
   * What {@link #restoreLatest} found: the restored checkpoint (empty when there is none, or none
   * intact) and every newer folder it passed over, newest first, with the reason.
   */
  public record Restore(Optional<Restored> restored, List<Skipped> skipped) {
    public Restore {
      skipped = List.copyOf(skipped);
    }
  }

  public Checkpointer(CheckpointOptions options, PrintStream log) throws IOException {
    this(options, log, UnaryOperator.identity());
  }

  /**
   * @param decorate wraps the object store (tests: fail or stop the server at a chosen call)
   */
  Checkpointer(CheckpointOptions options, PrintStream log, UnaryOperator<ObjectStore> decorate)
      throws IOException {
    this.options = options;
    this.log = log;
    this.scratch = Files.createTempDirectory("kubetune-ckpt-");
    this.objectStore = decorate.apply(ObjectStores.forUri(options.uri(), options.storage()));
    this.store = new CheckpointStore(objectStore, scratch.resolve("store"));
    if (options.owner() != null) {
      try {
        options
            .owner()
            .claim(
                objectStore,
                io.kubetune.trainer.storage.StorageUri.parse(options.uri()).toString());
      } catch (NoSuchBucketException e) {
        objectStore.close();
        throw TrainingStaging.inField("checkpoints.uri", options.uri(), e);
      } catch (IOException | RuntimeException e) {
        objectStore.close();
        throw e;
      }
    }
  }

  public CheckpointOptions options() {
    return options;
  }

  /**
   * The newest intact checkpoint of this revision (if any) and the newer ones skipped on the way,
   * each also printed as one line naming its URI and the reason.
   */
  public Restore restoreLatest() throws IOException {
    List<Skipped> skipped = new java.util.ArrayList<>();
    long below = Long.MAX_VALUE;
    while (true) {
      Path dir = freshDir("restore");
      Scan scan = store.restoreLatest(options.trainingRevision(), dir, below);
      skipped.addAll(scan.skipped());
      for (Skipped s : scan.skipped()) {
        log.println(
            "skipping checkpoint step "
                + s.step()
                + " at "
                + s.uri()
                + ": "
                + s.reason()
                + "; trying the next older one");
      }
      if (scan.latest().isEmpty()) {
        withdrawRejected(skipped, -1);
        return new Restore(Optional.empty(), skipped);
      }
      Checkpoint cp = scan.latest().get();
      try {
        TrainerState state = JSON.readValue(dir.resolve(STATE).toFile(), TrainerState.class);
        Map<String, Safetensors.FloatTensor> weights = read(dir.resolve(WEIGHTS), "");
        Map<String, Safetensors.FloatTensor> first = read(dir.resolve(OPTIMIZER), "first/");
        Map<String, Safetensors.FloatTensor> second = read(dir.resolve(OPTIMIZER), "second/");
        withdrawRejected(skipped, cp.step());
        return new Restore(Optional.of(new Restored(cp, state, weights, first, second)), skipped);
      } catch (IOException | RuntimeException e) {
        // Intact (the checksums match) but unreadable, e.g. written by a trainer version whose
        // files this one cannot read: as unusable as a damaged one, so try the next older.
        String reason =
            INTACT_BUT_UNREADABLE
                + (e.getMessage() == null ? e.toString() : e.getMessage()).replace('\n', ' ');
        log.println(
            "skipping checkpoint step "
                + cp.step()
                + " at "
                + cp.uri()
                + ": "
                + reason
                + "; trying the next older one");
        skipped.add(new Skipped(cp.step(), cp.uri(), reason));
        below = cp.step();
      }
    }
  }

  /** The best checkpoint by a metric and its trainable tensors. */
  public record Best(Checkpoint checkpoint, Map<String, Safetensors.FloatTensor> weights) {}

  /**
   * The checkpoint of this run's revision that is best by {@code metric} (the one the retention
   * keeps and the operator reports as bestCheckpoint), with its trainable tensors; empty when no
   * intact checkpoint has the metric.
   */
  public Optional<Best> readBest(String metric, boolean higherIsBetter) throws IOException {
    Path dir = freshDir("best");
    Optional<Checkpoint> best =
        store.restoreBest(options.trainingRevision(), metric, higherIsBetter, dir);
    if (best.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(new Best(best.get(), read(dir.resolve(WEIGHTS), "")));
  }

  /**
   * This run trains the rejected steps newer than {@code restoredStep} again: withdraw their
   * manifests (the files become an orphan attempt for prune), else each new commit of such a step
   * would lose to them. Folders of another training revision are left to the commit's own rule, and
   * so are intact checkpoints this trainer cannot read: their files are whole (perhaps written by a
   * newer trainer), so nothing saved is deleted; this run then skips committing those steps.
   */
  private void withdrawRejected(List<Skipped> skipped, long restoredStep) {
    for (Skipped s : skipped) {
      if (s.step() > restoredStep
          && !s.reason().startsWith(CheckpointStore.OTHER_REVISION)
          && !s.reason().startsWith(INTACT_BUT_UNREADABLE)) {
        try {
          store.withdraw(s.step());
        } catch (IOException e) {
          log.println(
              "could not withdraw rejected checkpoint step "
                  + s.step()
                  + " (its step will not be checkpointed again by this run): "
                  + e.getMessage());
        }
      }
    }
  }

  /**
   * Writes and commits a checkpoint of {@code step}, then prunes old ones. Returns the committed
   * checkpoint's URI, or null when another writer already owns the step (a stale pod racing its
   * replacement: ours is discarded, the training goes on).
   *
   * @throws IOException when the files cannot be written or the store stays unreachable beyond its
   *     retries; nothing is committed then (files already uploaded have no manifest and are removed
   *     by a later prune), and nothing is deleted here: a manifest whose response was lost may have
   *     landed, and its files must stay
   */
  public String save(
      TrainerState state,
      Map<String, NDArray> trainable,
      AdamW optimizer,
      Map<String, Double> metrics,
      String metric,
      boolean higherIsBetter)
      throws IOException {
    Path dir = freshDir("step-" + state.step());
    Map<String, Safetensors.FloatTensor> weights = new LinkedHashMap<>();
    trainable.forEach((name, array) -> weights.put(name, tensor(array)));
    Map<String, Safetensors.FloatTensor> moments = new LinkedHashMap<>();
    optimizer.firstMoment().forEach((name, array) -> moments.put("first/" + name, tensor(array)));
    optimizer.secondMoment().forEach((name, array) -> moments.put("second/" + name, tensor(array)));
    Safetensors.writeFloats(dir.resolve(WEIGHTS), weights, Map.of());
    Safetensors.writeFloats(dir.resolve(OPTIMIZER), moments, Map.of());
    JSON.writeValue(dir.resolve(STATE).toFile(), state);
    Map<String, Path> files = new LinkedHashMap<>();
    for (String name : List.of(WEIGHTS, OPTIMIZER, STATE)) {
      files.put(name, dir.resolve(name));
    }
    try {
      CommitResult result =
          store.commit(
              state.step(),
              files,
              CheckpointMetadata.of(
                  options.trainingRevision(), metrics == null ? Map.of() : metrics));
      if (!result.committed()) {
        log.println("checkpoint of step " + state.step() + " not committed: " + result.message());
        return null;
      }
      try {
        store.prune(options.keepLast(), metric, higherIsBetter, Set.of());
      } catch (IOException | RuntimeException e) {
        // Retention is housekeeping: a failed prune leaves extra checkpoints, never a wrong one.
        log.println("checkpoint prune failed (will retry at the next checkpoint): " + e);
      }
      return result.checkpoint().uri();
    } finally {
      deleteTree(dir);
    }
  }

  private static Safetensors.FloatTensor tensor(NDArray array) {
    return new Safetensors.FloatTensor(array.getShape().getShape(), array.toFloatArray());
  }

  private static Map<String, Safetensors.FloatTensor> read(Path file, String prefix)
      throws IOException {
    Map<String, Safetensors.FloatTensor> out = new LinkedHashMap<>();
    try (Safetensors.Reader reader = Safetensors.open(file)) {
      for (Map.Entry<String, Safetensors.TensorInfo> e : reader.tensors().entrySet()) {
        if (e.getKey().startsWith(prefix)) {
          out.put(
              e.getKey().substring(prefix.length()),
              new Safetensors.FloatTensor(e.getValue().shape(), reader.readFloats(e.getKey())));
        }
      }
    }
    return out;
  }

  private Path freshDir(String name) throws IOException {
    Path dir = scratch.resolve(name);
    deleteTree(dir);
    return Files.createDirectories(dir);
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  @Override
  public void close() throws IOException {
    try {
      objectStore.close();
    } catch (Exception e) {
      log.println("closing checkpoint storage: " + e);
    }
    deleteTree(scratch);
  }
}
