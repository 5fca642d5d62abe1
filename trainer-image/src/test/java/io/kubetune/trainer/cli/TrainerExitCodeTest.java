package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.StorageFullException;
import io.kubetune.trainer.storage.NoSuchBucketException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which failures end as which exit code and termination reason (no training, no process). */
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

  private JsonNode termination(int code, Throwable e) throws Exception {
    TrainerCli.Train train = new TrainerCli.Train();
    train.terminationLog = dir.resolve("termination-" + code);
    train.writeTermination(code, e);
    return new ObjectMapper().readTree(train.terminationLog.toFile());
  }
}
