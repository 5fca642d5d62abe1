package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.storage.FileObjectStore;
import io.kubetune.trainer.storage.StorageSettings;
import io.kubetune.trainer.storage.StorageUri;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two FineTuneJobs with one checkpoints.uri: the second is refused instead of overwriting the first
 * one's checkpoints and export.
 */
class CheckpointOwnerTest {
  @TempDir Path dir;

  @Test
  void theFirstJobClaimsTheLocationAndAnotherIsRefused() throws Exception {
    String uri = dir.toUri().toString();
    CheckpointOwner first = new CheckpointOwner("team-a", "tune", "uid-1");
    CheckpointOwner other = new CheckpointOwner("team-b", "tune-too", "uid-2");
    CheckpointOwner recreated = new CheckpointOwner("team-a", "tune", "uid-3");

    try (var store = new FileObjectStore(StorageUri.parse(uri))) {
      first.claim(store, uri);
      first.claim(store, uri); // a retried pod of the same job
      assertThat(Files.readString(dir.resolve(CheckpointOwner.KEY)))
          .contains("\"uid\":\"uid-1\"")
          .contains("\"name\":\"tune\"");

      assertThatThrownBy(() -> other.claim(store, uri))
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("belongs to FineTuneJob team-a/tune (uid uid-1)")
          .hasMessageContaining("own checkpoints.uri");
      assertThatThrownBy(() -> recreated.claim(store, uri))
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("delete " + uri + CheckpointOwner.KEY);
    }
    // Deleting the marker is the deliberate take-over.
    Files.delete(dir.resolve(CheckpointOwner.KEY));
    try (var store = new FileObjectStore(StorageUri.parse(uri))) {
      recreated.claim(store, uri);
    }
    assertThat(Files.readString(dir.resolve(CheckpointOwner.KEY))).contains("uid-3");
  }

  @Test
  void theCheckpointerClaimsBeforeWritingAnything() throws Exception {
    String uri = dir.toUri().toString();
    Files.writeString(
        dir.resolve(CheckpointOwner.KEY),
        "{\"namespace\":\"ns\",\"name\":\"someone-else\",\"uid\":\"u0\"}");
    CheckpointOptions options =
        new CheckpointOptions(
            uri, 10, 3, "rev", StorageSettings.defaults(), new CheckpointOwner("ns", "me", "u1"));
    assertThatThrownBy(() -> new Checkpointer(options, System.err).close())
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("ns/someone-else");
  }
}
