package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.BaseModelSpec;
import io.kubetune.api.v1alpha1.CheckpointsSpec;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.checkpoint.Checkpoint;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.ObjectStores;
import io.kubetune.trainer.storage.StorageSettings;
import io.kubetune.trainer.train.CheckpointOptions;
import io.kubetune.trainer.train.FineTuner;
import io.kubetune.trainer.train.ProgressReporter;
import io.kubetune.trainer.train.TrainerConfigMapping;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SIGTERM to a real trainer process: it finishes the step, commits a checkpoint of that step and
 * exits with 4 within the budget; a new run resumes from exactly that step (no step lost).
 */
class PreemptionTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void sigtermCheckpointsTheCurrentStepAndExitsPreempted() throws Exception {
    Path model = dir.resolve("tiny");
    assertThat(
            TrainerCli.run(
                new String[] {"init-tiny-model", "--output", model.toString(), "--seed", "5"},
                System.out,
                System.err))
        .isZero();
    TrainerConfig config = new TrainerConfig();
    config.job = new TrainerConfig.JobIdentity();
    config.job.trainingRevision = "rev-sigterm";
    config.baseModel = new BaseModelSpec();
    config.baseModel.uri = model.toUri().toString();
    config.dataset = new DatasetSpec();
    config.dataset.train =
        Fixtures.completions(dir.resolve("train.jsonl"), 48, 1).toUri().toString();
    config.dataset.format = DatasetSpec.Format.completion;
    config.method = new MethodSpec();
    config.method.type = MethodSpec.Type.LoRA;
    config.method.lora = new LoraSpec();
    config.method.lora.rank = 4;
    config.method.lora.dropout = 0.0;
    config.hyperparameters = new HyperparametersSpec();
    config.hyperparameters.maxSteps = 1_000_000; // far more than runs before the signal
    config.hyperparameters.batchSize = 8;
    config.checkpoints = new CheckpointsSpec();
    config.checkpoints.uri = dir.resolve("checkpoints").toUri().toString();
    config.checkpoints.everySteps = 1_000_000; // so the only checkpoint is the SIGTERM one
    config.output = new TrainerConfig.Output();
    config.output.uri = dir.resolve("out").toUri().toString();
    Path configFile = dir.resolve("trainer-config.json");
    JSON.writeValue(configFile.toFile(), config);
    Path termination = dir.resolve("termination-log");

    // The same JVM flags as bin/trainer, on this test's classpath (no packaged jar needed).
    List<String> command = TrainerProcess.trainCommand(configFile, termination);
    Process process =
        new ProcessBuilder(command).redirectError(dir.resolve("stderr.txt").toFile()).start();
    List<TrainerEvent> events = new ArrayList<>();
    CountDownLatch training = new CountDownLatch(1);
    Thread reader =
        new Thread(
            () -> {
              try (BufferedReader lines =
                  new BufferedReader(
                      new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = lines.readLine()) != null; ) {
                  TrainerEvent event = TrainerEvent.parse(line).orElse(null);
                  if (event != null) {
                    synchronized (events) {
                      events.add(event);
                    }
                    if (event instanceof TrainerEvent.Progress p && p.step() >= 5) {
                      training.countDown();
                    }
                  }
                }
              } catch (Exception e) {
                // the process ended
              }
            });
    reader.start();
    try {
      assertThat(training.await(120, TimeUnit.SECONDS))
          .as("trainer reached step 5; stderr: %s", Files.readString(dir.resolve("stderr.txt")))
          .isTrue();
      long signalled = System.nanoTime();
      // SIGTERM through the handle: Process.destroy() would also close our end of its stdout.
      process.toHandle().destroy();
      assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
      double seconds = (System.nanoTime() - signalled) / 1e9;
      reader.join(5000);
      String stderr = Files.readString(dir.resolve("stderr.txt"));
      assertThat(process.exitValue()).as(stderr).isEqualTo(TrainerExitCodes.PREEMPTED);
      assertThat(seconds).as("within the default 10 s budget").isLessThan(10);

      long lastStep;
      TrainerEvent.Checkpoint checkpoint;
      TrainerEvent.Preempted preempted;
      synchronized (events) {
        lastStep =
            events.stream()
                .filter(TrainerEvent.Progress.class::isInstance)
                .mapToLong(e -> ((TrainerEvent.Progress) e).step())
                .max()
                .orElseThrow();
        checkpoint = TrainerEvent.last(events, TrainerEvent.Checkpoint.class).orElseThrow();
        preempted =
            events.stream()
                .filter(TrainerEvent.Preempted.class::isInstance)
                .map(TrainerEvent.Preempted.class::cast)
                .findFirst()
                .orElseThrow();
      }
      System.out.printf(
          "SIGTERM after step >= 5: checkpoint of step %d committed, exit %d after %.2f s%n",
          lastStep, process.exitValue(), seconds);
      assertThat(checkpoint.step()).isEqualTo(lastStep);
      assertThat(preempted.step()).isEqualTo(lastStep);
      JsonNode term = JSON.readTree(termination.toFile());
      assertThat(term.get("reason").asText()).isEqualTo("Preempted");
      assertThat(term.get("step").asLong()).isEqualTo(lastStep);
      assertThat(dir.resolve("out").resolve("adapter_model.safetensors")).doesNotExist();

      try (ObjectStore store =
          ObjectStores.forUri(config.checkpoints.uri, StorageSettings.defaults())) {
        Optional<Checkpoint> latest = new CheckpointStore(store).latestValid("rev-sigterm");
        assertThat(latest).isPresent();
        assertThat(latest.get().step()).isEqualTo(lastStep);
      }

      // A new attempt resumes at exactly that step (asked to stop at once, it trains nothing).
      CheckpointOptions checkpoints = TrainerConfigMapping.checkpointOptions(config);
      ByteArrayOutputStream log = new ByteArrayOutputStream();
      try (FineTuner tuner =
          new FineTuner(
              TrainerConfigMapping.toOptions(config),
              new ProgressReporter(new PrintStream(log, true, StandardCharsets.UTF_8)),
              checkpoints)) {
        tuner.requestStop();
        FineTuner.Result result = tuner.train();
        assertThat(tuner.startStep()).isEqualTo(lastStep);
        assertThat(result.preempted()).isTrue();
        assertThat(result.trainLoss()).hasSize((int) lastStep);
      }
    } finally {
      process.destroyForcibly();
    }
  }
}
