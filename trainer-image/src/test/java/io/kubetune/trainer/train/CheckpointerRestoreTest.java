package io.kubetune.trainer.train;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.checkpoint.CheckpointMetadata;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.safetensors.Safetensors;
import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.ObjectStores;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A checkpoint whose files match their checksums but cannot be read (e.g. another trainer version
 * wrote them) is skipped like a damaged one, not a crash that the Job retries forever.
 */
class CheckpointerRestoreTest {
  static final String REV = "rev-restore";
  @TempDir Path dir;

  @Test
  void anIntactButUnreadableCheckpointIsSkippedAndKept() throws Exception {
    String uri = dir.resolve("checkpoints").toUri().toString();
    try (ObjectStore store = ObjectStores.forUri(uri, StorageSettings.defaults())) {
      CheckpointStore checkpoints = new CheckpointStore(store, dir.resolve("scratch"));
      commit(checkpoints, 5, new ObjectMapper().writeValueAsString(state(5)));
      commit(checkpoints, 10, "{\"step\": 10, \"unknownField\": ");
    }
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    CheckpointOptions options = new CheckpointOptions(uri, 5, 3, REV, StorageSettings.defaults());
    try (Checkpointer checkpointer = new Checkpointer(options, new PrintStream(log, true, UTF_8))) {
      Checkpointer.Restore restore = checkpointer.restoreLatest();

      assertThat(restore.restored()).isPresent();
      assertThat(restore.restored().get().state().step()).isEqualTo(5);
      assertThat(restore.restored().get().weights().get("a").data()).containsExactly(1f, 2f);
      assertThat(restore.skipped()).hasSize(1);
      assertThat(restore.skipped().get(0).step()).isEqualTo(10);
      assertThat(restore.skipped().get(0).reason()).startsWith("intact but unreadable: ");
      assertThat(log.toString(UTF_8))
          .contains("skipping checkpoint step 10 at ")
          .contains("intact but unreadable");
    }
    try (ObjectStore store = ObjectStores.forUri(uri, StorageSettings.defaults())) {
      // Its files are whole (a newer trainer may read them): nothing saved is deleted.
      assertThat(store.exists("step-000000010/manifest.json"))
          .as("kept: intact files are never withdrawn")
          .isTrue();
      assertThat(store.exists("step-000000005/manifest.json")).isTrue();
    }
  }

  private static Checkpointer.TrainerState state(long step) {
    return new Checkpointer.TrainerState(
        step, step, 0.5, 42, 100, null, null, 0, false, List.of(), List.of());
  }

  private void commit(CheckpointStore checkpoints, long step, String stateJson) throws Exception {
    Path folder = Files.createDirectories(dir.resolve("src-" + step));
    Path weights = folder.resolve(Checkpointer.WEIGHTS);
    Safetensors.writeFloats(
        weights, Map.of("a", new Safetensors.FloatTensor(new long[] {2}, new float[] {1, 2})));
    Path optimizer = folder.resolve(Checkpointer.OPTIMIZER);
    Map<String, Safetensors.FloatTensor> moments = new LinkedHashMap<>();
    moments.put("first/a", new Safetensors.FloatTensor(new long[] {2}, new float[] {0, 0}));
    moments.put("second/a", new Safetensors.FloatTensor(new long[] {2}, new float[] {0, 0}));
    Safetensors.writeFloats(optimizer, moments);
    Path state = Files.writeString(folder.resolve(Checkpointer.STATE), stateJson);
    assertThat(
            checkpoints
                .commit(
                    step,
                    Map.of(
                        Checkpointer.WEIGHTS,
                        weights,
                        Checkpointer.OPTIMIZER,
                        optimizer,
                        Checkpointer.STATE,
                        state),
                    CheckpointMetadata.of(REV, Map.of()))
                .committed())
        .isTrue();
  }
}
