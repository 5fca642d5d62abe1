package io.kubetune.trainer.cli;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.BaseModelSpec;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.StorageFullException;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.storage.NoSuchBucketException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which failures end as which exit code and termination reason (in-process, no training). */
class TrainerExitCodeTest {
  @TempDir Path dir;

  @Test
  void aFullVolumeIsStorageFullWhereverItSurfaces() throws Exception {
    StorageFullException checkpoint =
        new StorageFullException(
            "checkpoints.uri file:///ckpt/: no space left while writing the checkpoint of step 10",
            new IOException("No space left on device"));
    assertThat(TrainerCli.exitCode(checkpoint)).isEqualTo(TrainerExitCodes.STORAGE_FULL);
    assertThat(TrainerCli.oneLine(checkpoint)).startsWith("checkpoints.uri file:///ckpt/");
    // The export or the staging hitting ENOSPC, as Files.copy and FileOutputStream report it.
    assertThat(
            TrainerCli.exitCode(
                new UncheckedIOException(
                    new FileSystemException("/out/a", "/out/b", "No space left on device"))))
        .isEqualTo(TrainerExitCodes.STORAGE_FULL);
    assertThat(TrainerCli.exitCode(new IOException("Disk quota exceeded")))
        .isEqualTo(TrainerExitCodes.STORAGE_FULL);
    assertThat(TrainerCli.exitCode(new IOException("Connection reset")))
        .isEqualTo(TrainerExitCodes.UNEXPECTED_ERROR);

    assertThat(termination(TrainerExitCodes.STORAGE_FULL, checkpoint).get("reason").asText())
        .isEqualTo("StorageFull");
  }

  @Test
  void aMissingBucketIsBadInput() throws Exception {
    NoSuchBucketException e =
        new NoSuchBucketException("GET s3://nope/k", "HTTP 404 NoSuchBucket: no such bucket");
    assertThat(e).isInstanceOf(BadInputException.class);
    assertThat(TrainerCli.exitCode(e)).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(termination(TrainerCli.exitCode(e), e).get("reason").asText()).isEqualTo("BadInput");
  }

  @Test
  void aDatasetLineThatIsNotUtf8EndsTheTrainAsBadInputNamingFileAndLine() throws Exception {
    Path model = dir.resolve("tiny");
    TinyLlama.write(model, TinyLlama.TEST_SIZE, false, 5);
    Path train = dir.resolve("train.jsonl");
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    bytes.write("{\"prompt\": \"a\", \"completion\": \" b\"}\r\n".getBytes(UTF_8));
    bytes.write("{\"prompt\": \"caf".getBytes(UTF_8));
    bytes.write(0xE9); // Latin-1 "é"
    bytes.write("\", \"completion\": \" b\"}\r\n".getBytes(UTF_8));
    Files.write(train, bytes.toByteArray());
    TrainerConfig config = new TrainerConfig();
    config.baseModel = new BaseModelSpec();
    config.baseModel.uri = model.toUri().toString();
    config.dataset = new DatasetSpec();
    config.dataset.train = train.toUri().toString();
    config.dataset.format = DatasetSpec.Format.completion;
    config.method = new MethodSpec();
    config.method.type = MethodSpec.Type.LoRA;
    config.method.lora = new LoraSpec();
    config.hyperparameters = new HyperparametersSpec();
    config.hyperparameters.maxSteps = 1;
    config.output = new TrainerConfig.Output();
    config.output.uri = dir.resolve("out").toUri().toString();
    Path file = dir.resolve("config.json");
    new ObjectMapper().writeValue(file.toFile(), config);
    Path termination = dir.resolve("termination");
    ByteArrayOutputStream err = new ByteArrayOutputStream();

    int code =
        TrainerCli.run(
            new String[] {
              "train", "--config", file.toString(), "--termination-log", termination.toString()
            },
            new PrintStream(new ByteArrayOutputStream(), true, UTF_8),
            new PrintStream(err, true, UTF_8));

    String stderr = err.toString(UTF_8);
    assertThat(code).as(stderr).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(stderr)
        .contains("error: " + train + ":2: not valid UTF-8 (byte offset 15 in the line)");
    JsonNode written = new ObjectMapper().readTree(termination.toFile());
    assertThat(written.get("reason").asText()).isEqualTo("BadInput");
    assertThat(written.get("message").asText()).startsWith(train + ":2: not valid UTF-8");
  }

  private JsonNode termination(int code, Throwable e) throws Exception {
    TrainCommand train = new TrainCommand();
    train.terminationLog = dir.resolve("termination-" + code);
    train.writeTermination(code, e);
    return new ObjectMapper().readTree(train.terminationLog.toFile());
  }
}
