package io.kubetune.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.trainer.TrainerEnvironment;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.trainer.TrainerTermination;
import io.kubetune.trainer.storage.FileDigest;
import io.kubetune.trainer.storage.StorageSettings;
import io.kubetune.trainer.storage.TrainingStaging;
import io.kubetune.trainer.train.CheckpointOptions;
import io.kubetune.trainer.train.FineTuner;
import io.kubetune.trainer.train.LossNotFiniteException;
import io.kubetune.trainer.train.ProgressReporter;
import io.kubetune.trainer.train.TrainerConfigMapping;
import io.kubetune.trainer.train.TrainingMethod;
import io.kubetune.trainer.train.TrainingOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code trainer train}: stages the inputs, runs one {@link FineTuner}, exports and publishes the
 * result, and writes the termination message the operator reads (exit codes: {@link
 * TrainerExitCodes}).
 */
@Command(name = "train", description = "Fine-tune as described by a TrainerConfig JSON file.")
final class TrainCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(names = "--config", required = true, description = "TrainerConfig JSON file.")
  Path config;

  @Option(
      names = "--termination-log",
      // KUBETUNE_TERMINATION_LOG lets local mode point it at the pod's folder instead of
      // the host's /dev.
      defaultValue = "${env:" + TrainerEnvironment.TERMINATION_LOG + ":-/dev/termination-log}",
      description = "Where to write the TrainerTermination JSON when that directory exists.")
  Path terminationLog;

  @Option(
      names = "--preemption-budget-seconds",
      defaultValue = "${env:KUBETUNE_PREEMPTION_BUDGET_SECONDS:-10}",
      description =
          "After SIGTERM: time to finish the step and commit a checkpoint before exiting"
              + " with code 4 regardless.")
  long preemptionBudgetSeconds;

  @Override
  public Integer call() throws IOException {
    Preemption preemption =
        Preemption.install(Duration.ofSeconds(preemptionBudgetSeconds), System.err);
    TrainerConfig trainerConfig = TrainerConfigMapping.read(config);
    TrainerConfigMapping.checkBounds(trainerConfig); // before any download
    // s3:// inputs are downloaded first and an s3:// output is uploaded after the export: the
    // training code only sees local files.
    TrainerTermination termination = new TrainerTermination();
    try (TrainingStaging staging =
        TrainingStaging.prepare(
            trainerConfig, stagingDir(), StorageSettings.from(trainerConfig.storage))) {
      // The result records the base's URI as the user gave it, not the staged local copy.
      TrainingOptions options =
          TrainerConfigMapping.toOptions(staging.localConfig()).toBuilder()
              .baseModelName(trainerConfig.baseModel.uri)
              .build();
      ProgressReporter progress = new ProgressReporter(TrainerCli.Context.out);
      // Checkpoints go straight to checkpoints.uri (not staged): the original config's URI.
      CheckpointOptions checkpoints = TrainerConfigMapping.checkpointOptions(trainerConfig);
      try (FineTuner tuner = new FineTuner(options, progress, checkpoints)) {
        preemption.attach(tuner);
        FineTuner.Result result = tuner.train();
        if (result.preempted()) {
          progress.emit(new TrainerEvent.Preempted(result.steps()));
          termination.reason = "Preempted";
          termination.step = result.steps();
          termination.message =
              "SIGTERM at step "
                  + result.steps()
                  + "; "
                  + afterPreemption(checkpoints != null, result.steps(), tuner);
          writeTermination(termination);
          return TrainerExitCodes.PREEMPTED;
        }
        tuner.export(result);
        boolean lora = options.method() == TrainingMethod.LORA;
        termination.format = lora ? "peft-lora" : "hf-full";
        termination.digest =
            FileDigest.sha256(
                options.output().resolve(lora ? "adapter_model.safetensors" : "model.safetensors"));
        staging.publishOutput();
        progress.emit(
            new TrainerEvent.Done(
                result.steps(),
                result.stoppedEarly(),
                trainerConfig.output.uri,
                result.exported() == null ? null : result.exported().metrics()));
        termination.step = result.steps();
        if (result.initial() != null) {
          termination.baseMetrics = result.initial().metrics();
        }
        // The tuned model is what was exported: the last step, or the best checkpoint.
        if (result.exported() != null) {
          termination.tunedMetrics = result.exported().metrics();
        }
      }
    }
    termination.reason = "Completed";
    termination.message = "training finished; result in " + trainerConfig.output.uri;
    writeTermination(termination);
    return TrainerExitCodes.SUCCESS;
  }

  /** What the next attempt does after a preemption at {@code step}. */
  static String afterPreemption(boolean checkpointing, long step, FineTuner tuner) {
    long saved = tuner.lastCheckpointStep();
    if (!checkpointing) {
      return "no checkpoints.uri, the next attempt starts over";
    }
    if (saved == step) {
      return "checkpoint committed, the next attempt resumes from it";
    }
    if (step == 0) {
      return "nothing trained yet, the next attempt starts over";
    }
    return saved >= 0
        ? "its checkpoint failed, the next attempt resumes from step " + saved
        : "its checkpoint failed, the next attempt starts over";
  }

  /** Where s3:// inputs are downloaded: KUBETUNE_STAGING_DIR (the pod's cache volume) or tmp. */
  static Path stagingDir() throws IOException {
    String configured = System.getenv(TrainerEnvironment.STAGING_DIR);
    if (configured != null && !configured.isBlank()) {
      Path dir = Path.of(configured);
      Files.createDirectories(dir);
      return Files.createTempDirectory(dir, "run-");
    }
    return Files.createTempDirectory("kubetune-staging-");
  }

  void writeTermination(int code, Throwable e) {
    TrainerTermination termination = new TrainerTermination();
    termination.reason =
        switch (code) {
          case TrainerExitCodes.BAD_INPUT -> "BadInput";
          case TrainerExitCodes.LOSS_NOT_FINITE -> "LossNotFinite";
          case TrainerExitCodes.STORAGE_FULL -> "StorageFull";
          default -> "UnexpectedError";
        };
    String message = TrainerCli.oneLine(e);
    // Kubernetes keeps at most 4096 bytes of the termination message.
    termination.message = message.length() > 3500 ? message.substring(0, 3500) : message;
    if (e instanceof LossNotFiniteException l) {
      termination.step = l.step();
    }
    writeTermination(termination);
  }

  private void writeTermination(TrainerTermination termination) {
    if (terminationLog == null
        || terminationLog.toAbsolutePath().getParent() == null
        || !Files.isDirectory(terminationLog.toAbsolutePath().getParent())) {
      return;
    }
    try {
      Files.writeString(terminationLog, JSON.writeValueAsString(termination));
    } catch (IOException ignored) {
      // Best effort: the exit code still tells the operator what happened.
    }
  }
}
