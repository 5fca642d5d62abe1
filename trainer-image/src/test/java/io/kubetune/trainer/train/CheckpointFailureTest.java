package io.kubetune.trainer.train;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.ProgressEvents;
import io.kubetune.trainer.StorageFullException;
import io.kubetune.trainer.checkpoint.Checkpoint;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.storage.ForwardingObjectStore;
import io.kubetune.trainer.storage.ObjectInfo;
import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.ObjectStores;
import io.kubetune.trainer.storage.RetryPolicy;
import io.kubetune.trainer.storage.S3ProxyServer;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoint failures through the trainer's own save and resume path, on a real S3 server
 * (S3Proxy): a corrupt newest checkpoint and a partial one (files, no manifest) are skipped with
 * their reasons, on stderr and in the {@code resume} event, and the run resumes from the previous
 * one and ends where a straight run does; an outage while a checkpoint is written is ridden out by
 * the store's retries; an outage that outlasts them costs that one checkpoint, not the run.
 */
class CheckpointFailureTest {
  static final int STEPS = 24;
  static final int EVERY = 5;
  static final String REV = "rev-failures";

  /** As in {@link CheckpointResumeTest}: far below what one step moves a weight (~1e-2). */
  static final double TOLERANCE = 1e-4;

  @TempDir static Path dir;
  static Path model;
  static Path train;
  static Path validation;
  static S3ProxyServer server;

  @BeforeAll
  static void fixtures() throws Exception {
    model = dir.resolve("tiny");
    TinyLlama.write(model, new TinyLlama.Size(64, 2, 4, 2, 128), true, 3);
    train = Fixtures.tickets(dir.resolve("train.jsonl"), 96, 1);
    validation = Fixtures.tickets(dir.resolve("validation.jsonl"), 24, 2);
    S3ProxyServer.useTestCredentials();
    server = S3ProxyServer.start("ckpt");
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server != null) {
      server.close();
    }
    S3ProxyServer.clearTestCredentials();
  }

  static TrainingOptions options(String out) {
    return TrainingOptions.defaults(model, train, DatasetFormat.CLASSIFICATION, dir.resolve(out))
        .withValidation(validation)
        .withMethod(TrainingMethod.LORA, 4, 8, List.of("q_proj", "v_proj"), 1)
        .withSchedule(STEPS, 1, 1e-2, 8, 2, 3)
        .withEvaluation(8, 0, "accuracy", true)
        .withRegularisation(0.01, 1.0, 0.0, 42);
  }

  static StorageSettings settings(RetryPolicy retry) {
    return StorageSettings.defaults()
        .withEndpoint(server.endpoint())
        .withRegion("us-east-1")
        .withPathStyle(true)
        .withRetry(retry);
  }

  static CheckpointOptions checkpoints(String prefix, RetryPolicy retry) {
    return new CheckpointOptions(
        "s3://ckpt/" + prefix + "/checkpoints/", EVERY, 2, REV, settings(retry));
  }

  static ObjectStore open(CheckpointOptions checkpoints) {
    return ObjectStores.forUri(checkpoints.uri(), settings(RetryPolicy.DEFAULT));
  }

  record Run(
      FineTuner.Result result,
      Map<String, float[]> weights,
      long startStep,
      ProgressEvents events,
      String stderr) {}

  /** One in-process run; stderr is captured (and still printed) so its lines can be checked. */
  static Run run(
      String out,
      CheckpointOptions checkpoints,
      long stopAfter,
      UnaryOperator<ObjectStore> decorator,
      Consumer<TrainerEvent> listener)
      throws Exception {
    ProgressEvents events = new ProgressEvents(listener);
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream err = System.err;
    System.setErr(new PrintStream(new Tee(captured, err), true, UTF_8));
    try (FineTuner tuner =
        new FineTuner(options(out), new ProgressReporter(events.stream()), checkpoints)) {
      if (stopAfter > 0) {
        tuner.stopAfterStep(stopAfter);
      }
      tuner.decorateCheckpointStore(decorator);
      FineTuner.Result result = tuner.train();
      Map<String, float[]> weights = new LinkedHashMap<>();
      for (Map.Entry<String, NDArray> e : tuner.trainable().entrySet()) {
        weights.put(e.getKey(), e.getValue().toFloatArray());
      }
      return new Run(result, weights, tuner.startStep(), events, captured.toString(UTF_8));
    } finally {
      System.setErr(err);
    }
  }

  static List<Long> steps(List<TrainerEvent.Checkpoint> events) {
    return events.stream().map(TrainerEvent.Checkpoint::step).toList();
  }

  @Test
  void corruptAndPartialNewestCheckpointsAreSkippedAndReportedAndTheRunResumesFromTheOlderOne()
      throws Exception {
    CheckpointOptions checkpoints = checkpoints("corrupt", RetryPolicy.DEFAULT);
    Run crashed = run("corrupt-crashed", checkpoints, 15, UnaryOperator.identity(), e -> {});
    assertThat(steps(crashed.events().of(TrainerEvent.Checkpoint.class)))
        .containsExactly(5L, 10L, 15L);

    String corruptUri;
    try (ObjectStore store = open(checkpoints)) {
      CheckpointStore cs = new CheckpointStore(store, dir.resolve("scratch-corrupt"));
      Checkpoint newest = cs.latestValid(REV).orElseThrow();
      assertThat(newest.step()).isEqualTo(15);
      corruptUri = newest.uri();
      // One bit of the newest checkpoint's weights flips at rest (same size, other SHA-256).
      String weights = newest.folder() + newest.manifest().attempt() + "/" + Checkpointer.WEIGHTS;
      byte[] bytes = store.getBytes(weights);
      bytes[bytes.length - 100] ^= 0x04;
      store.put(weights, bytes);
      // A pod died after uploading the files of step 18, before its manifest.
      store.put("step-000000018/0badf00d/" + Checkpointer.WEIGHTS, bytes);
      store.put("step-000000018/0badf00d/" + Checkpointer.STATE, "{}".getBytes(UTF_8));
    }

    Run resumed = run("corrupt-resumed", checkpoints, 0, UnaryOperator.identity(), e -> {});
    assertThat(resumed.startStep()).as("the previous intact checkpoint").isEqualTo(10);
    TrainerEvent.Resume resume = resumed.events().of(TrainerEvent.Resume.class).get(0);
    System.out.println("resume event: " + resume);
    assertThat(resume.step()).isEqualTo(10);
    assertThat(resume.uri()).endsWith("/step-000000010/");
    List<TrainerEvent.Skipped> skipped = resume.skipped();
    assertThat(skipped).hasSize(2);
    assertThat(skipped.get(0).step()).isEqualTo(18);
    assertThat(skipped.get(0).uri()).endsWith("/checkpoints/step-000000018/");
    assertThat(skipped.get(0).reason()).contains("no manifest.json");
    assertThat(skipped.get(1).step()).isEqualTo(15);
    assertThat(skipped.get(1).uri()).isEqualTo(corruptUri);
    assertThat(skipped.get(1).reason())
        .startsWith("checksum mismatch: file " + Checkpointer.WEIGHTS + " has SHA-256 ");
    assertThat(resumed.stderr())
        .contains("skipping checkpoint step 15 at " + corruptUri + ": checksum mismatch")
        .contains("skipping checkpoint step 18 at ")
        .contains("resuming from step 10 of ");
    assertThat(resumed.events().of(TrainerEvent.Progress.class).get(0).step()).isEqualTo(11);
    assertThat(resumed.result().steps()).isEqualTo(STEPS);
    assertThat(resumed.result().trainLoss()).hasSize(STEPS);

    // Steps 11..15 are trained again and the run ends where a straight one does.
    Run straight = run("corrupt-straight", null, 0, UnaryOperator.identity(), e -> {});
    double diff = CheckpointResumeTest.maxDifference(straight.weights(), resumed.weights());
    System.out.printf(
        "corrupt newest checkpoint: resumed at 10, max |weight diff| vs straight %.2e%n", diff);
    assertThat(diff).isLessThanOrEqualTo(TOLERANCE);

    // The orphaned files of step 18 (older than the newest valid checkpoint now) were pruned.
    try (ObjectStore store = open(checkpoints)) {
      assertThat(store.list("step-000000018/", true)).isEmpty();
      CheckpointStore cs = new CheckpointStore(store, dir.resolve("scratch-corrupt-2"));
      assertThat(cs.latestValid(REV).orElseThrow().step()).isEqualTo(STEPS);
    }
  }

  @Test
  void whenEveryCheckpointIsUnusableTheRunSaysSoAndStartsOverFromStepZero() throws Exception {
    CheckpointOptions checkpoints = checkpoints("all-corrupt", RetryPolicy.DEFAULT);
    Run crashed = run("all-corrupt-crashed", checkpoints, 10, UnaryOperator.identity(), e -> {});
    assertThat(steps(crashed.events().of(TrainerEvent.Checkpoint.class))).containsExactly(5L, 10L);
    try (ObjectStore store = open(checkpoints)) {
      CheckpointStore cs = new CheckpointStore(store, dir.resolve("scratch-all-corrupt"));
      // Flip one bit of the newest intact checkpoint, then of the next one.
      for (long newest : List.of(10L, 5L)) {
        Checkpoint cp = cs.scan(REV).latest().orElseThrow();
        assertThat(cp.step()).isEqualTo(newest);
        String weights = cp.folder() + cp.manifest().attempt() + "/" + Checkpointer.WEIGHTS;
        byte[] bytes = store.getBytes(weights);
        bytes[bytes.length - 100] ^= 0x04;
        store.put(weights, bytes);
      }
      assertThat(cs.latestValid(REV)).isEmpty();
    }

    Run again = run("all-corrupt-again", checkpoints, 0, UnaryOperator.identity(), e -> {});

    assertThat(again.startStep()).isZero();
    List<TrainerEvent.Resume> resumes = again.events().of(TrainerEvent.Resume.class);
    assertThat(resumes).hasSize(1);
    TrainerEvent.Resume resume = resumes.get(0);
    System.out.println("resume event: " + TrainerEvent.toLine(resume));
    assertThat(resume.step()).isZero();
    assertThat(resume.uri()).as("resumed from nothing").isNull();
    assertThat(resume.skipped()).extracting(TrainerEvent.Skipped::step).containsExactly(10L, 5L);
    assertThat(resume.skipped())
        .allSatisfy(n -> assertThat(n.reason()).startsWith("checksum mismatch"));
    assertThat(again.stderr())
        .contains("no usable checkpoint at " + checkpoints.uri())
        .contains("all 2 were rejected")
        .contains("starting over from step 0");
    assertThat(again.events().of(TrainerEvent.Progress.class).get(0).step()).isEqualTo(1);
    assertThat(again.result().steps()).isEqualTo(STEPS);
    assertThat(again.result().trainLoss()).hasSize(STEPS);
    // The rejected manifests were withdrawn, so the steps trained again are checkpointed again
    // (before, the commits of steps 5 and 10 lost to them).
    assertThat(steps(again.events().of(TrainerEvent.Checkpoint.class)))
        .containsExactly(5L, 10L, 15L, 20L, 24L);
    assertThat(again.stderr()).doesNotContain("not committed");
  }

  @Test
  void aFullCheckpointVolumeEndsTheRunAsStorageFull() throws Exception {
    CheckpointOptions checkpoints =
        new CheckpointOptions(
            dir.resolve("full-volume").toUri().toString(),
            EVERY,
            2,
            REV,
            StorageSettings.defaults());
    // The volume fills up while the files of step 10 are written (what Files.copy reports).
    UnaryOperator<ObjectStore> decorator =
        store ->
            new ForwardingObjectStore(store) {
              @Override
              public void put(String key, Path file) throws IOException {
                if (key.startsWith("step-000000010/")) {
                  throw new java.nio.file.FileSystemException(
                      file.toString(), key, "No space left on device");
                }
                super.put(key, file);
              }
            };
    assertThatThrownBy(() -> run("full-volume", checkpoints, 0, decorator, e -> {}))
        .isInstanceOf(StorageFullException.class)
        .hasMessageStartingWith(
            "checkpoints.uri "
                + checkpoints.uri()
                + ": no space left while writing the checkpoint of step 10 (")
        .hasMessageContaining("No space left on device")
        .hasMessageEndingWith(
            "free space on the volume, give the job a larger one, or lower checkpoints.keepLast");
  }

  @Test
  void anOutageWhileACheckpointIsWrittenIsRiddenOutByTheRetries() throws Exception {
    RetryPolicy retry =
        new RetryPolicy(30, Duration.ofMillis(100), Duration.ofMillis(800), Duration.ofSeconds(30));
    CheckpointOptions checkpoints = checkpoints("outage", retry);
    ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    AtomicLong step10Reported = new AtomicLong();
    AtomicLong step10Committed = new AtomicLong();
    Run run;
    try {
      run =
          run(
              "outage",
              checkpoints,
              0,
              UnaryOperator.identity(),
              e -> {
                if (e instanceof TrainerEvent.Progress p && p.step() == 9) {
                  // Down before the checkpoint of step 10, back ~2 s later on the same port.
                  stop();
                  scheduler.schedule(CheckpointFailureTest::restart, 2, TimeUnit.SECONDS);
                } else if (e instanceof TrainerEvent.Progress p && p.step() == 10) {
                  step10Reported.set(System.nanoTime());
                } else if (e instanceof TrainerEvent.Checkpoint c && c.step() == 10) {
                  step10Committed.set(System.nanoTime());
                }
              });
    } finally {
      scheduler.shutdown();
      assertThat(scheduler.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
    double waited = (step10Committed.get() - step10Reported.get()) / 1e9;
    System.out.printf("outage of ~2 s: checkpoint of step 10 committed after %.2f s%n", waited);
    assertThat(run.result().steps()).isEqualTo(STEPS);
    assertThat(steps(run.events().of(TrainerEvent.Checkpoint.class)))
        .containsExactly(5L, 10L, 15L, 20L, 24L);
    assertThat(run.events().of(TrainerEvent.Warning.class)).isEmpty();
    assertThat(waited).as("the commit waited for the server").isGreaterThan(1.0);
    assertThat(run.stderr()).contains("retrying in").contains("s3://ckpt/outage/checkpoints/");
    try (ObjectStore store = open(checkpoints)) {
      CheckpointStore cs = new CheckpointStore(store, dir.resolve("scratch-outage"));
      assertThat(cs.latestValid(REV).orElseThrow().step()).isEqualTo(STEPS);
    }
  }

  @Test
  void anOutageBeyondTheRetryBudgetCostsOneCheckpointNotTheRun() throws Exception {
    RetryPolicy shortBudget =
        new RetryPolicy(4, Duration.ofMillis(50), Duration.ofMillis(200), Duration.ofSeconds(1));
    CheckpointOptions checkpoints = checkpoints("budget", shortBudget);
    AtomicBoolean stopped = new AtomicBoolean();
    AtomicBoolean invisibleWhileDown = new AtomicBoolean();
    // The files of step 10 are uploaded; the server goes away just before its manifest.
    UnaryOperator<ObjectStore> decorator =
        store ->
            new ForwardingObjectStore(store) {
              @Override
              public boolean putIfAbsent(String key, byte[] bytes) throws IOException {
                if (key.equals("step-000000010/manifest.json")
                    && stopped.compareAndSet(false, true)) {
                  stop();
                }
                return super.putIfAbsent(key, bytes);
              }
            };
    Run run =
        run(
            "budget",
            checkpoints,
            0,
            decorator,
            e -> {
              if (e instanceof TrainerEvent.Warning) {
                restart();
                try (ObjectStore store = open(checkpoints)) {
                  // Files uploaded, no manifest: the failed commit is not a checkpoint.
                  List<String> keys =
                      store.list("step-000000010/", true).stream().map(ObjectInfo::key).toList();
                  CheckpointStore cs = new CheckpointStore(store, dir.resolve("scratch-budget"));
                  invisibleWhileDown.set(
                      keys.size() == 3
                          && keys.stream().noneMatch(k -> k.endsWith("manifest.json"))
                          && cs.latestValid(REV).orElseThrow().step() == 5);
                } catch (IOException ex) {
                  throw new IllegalStateException(ex);
                }
              }
            });

    assertThat(run.result().steps()).as("the run went on").isEqualTo(STEPS);
    assertThat(steps(run.events().of(TrainerEvent.Checkpoint.class)))
        .containsExactly(5L, 15L, 20L, 24L);
    List<TrainerEvent.Warning> warnings = run.events().of(TrainerEvent.Warning.class);
    System.out.println("warning event: " + warnings.get(0));
    assertThat(warnings).hasSize(1);
    TrainerEvent.Warning warning = warnings.get(0);
    assertThat(warning.reason()).isEqualTo("CheckpointFailed");
    assertThat(warning.step()).isEqualTo(10);
    assertThat(warning.consecutiveFailures()).isEqualTo(1);
    assertThat(warning.lastCheckpointStep()).isEqualTo(5);
    assertThat(warning.message()).contains("step-000000010/manifest.json").contains("failed after");
    assertThat(run.stderr())
        .contains("warning: checkpoint of step 10 failed")
        .contains("the next checkpoint is tried at step 15");
    assertThat(invisibleWhileDown).as("partial step 10 invisible, step 5 in force").isTrue();
    try (ObjectStore store = open(checkpoints)) {
      // Once newer checkpoints exist, prune removes the orphaned files of the failed commit.
      assertThat(store.list("step-000000010/", true)).isEmpty();
      CheckpointStore cs = new CheckpointStore(store, dir.resolve("scratch-budget-2"));
      assertThat(cs.latestValid(REV).orElseThrow().step()).isEqualTo(STEPS);
    }
  }

  private static void stop() {
    try {
      server.stop();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static void restart() {
    try {
      server.restart();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** Writes to both streams. */
  static final class Tee extends OutputStream {
    private final OutputStream a;
    private final OutputStream b;

    Tee(OutputStream a, OutputStream b) {
      this.a = a;
      this.b = b;
    }

    @Override
    public synchronized void write(int x) throws IOException {
      a.write(x);
      b.write(x);
    }

    @Override
    public synchronized void write(byte[] bytes, int off, int len) throws IOException {
      a.write(bytes, off, len);
      b.write(bytes, off, len);
    }
  }
}
