package io.kubetune.trainer.checkpoint;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.storage.InvalidKeyException;
import io.kubetune.trainer.storage.ObjectInfo;
import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.StorageUri;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.io.TempDir;

/** Checkpoint protocol behaviour; run against S3 (S3Proxy) and the file store. */
abstract class CheckpointStoreContractTest {
  static final String REV = "rev-a";

  @TempDir Path tmp;
  ObjectStore store;
  CheckpointStore checkpoints;

  /** A fresh, empty store for one test; {@code name} is unique per test method. */
  abstract ObjectStore open(String name) throws Exception;

  @BeforeEach
  void openStore(TestInfo info) throws Exception {
    store =
        open(info.getTestMethod().orElseThrow().getName().toLowerCase() + "-" + System.nanoTime());
    checkpoints = new CheckpointStore(store, tmp.resolve("scratch"));
  }

  @AfterEach
  void closeStore() {
    if (store != null) {
      store.close();
    }
  }

  @Test
  void commitThenLatestValidRoundTrip() throws Exception {
    Path weights = randomFile("adapter.safetensors", 600_000, 1);
    Path optimizer = randomFile("optimizer.bin", 70_000, 2);
    Path state = text("trainer_state.json", "{\"step\":120}");
    Instant time = Instant.parse("2026-11-24T12:00:00Z");
    CommitResult result =
        checkpoints.commit(
            120,
            Map.of(
                "adapter.safetensors",
                weights,
                "optimizer/moments.bin",
                optimizer,
                "trainer_state.json",
                state),
            new CheckpointMetadata(REV, time, Map.of("eval_loss", 1.25, "loss", 1.5)));
    assertThat(result.committed()).isTrue();
    assertThat(result.checkpoint().uri()).endsWith("/step-000000120/");

    Checkpoint latest = checkpoints.latestValid(REV).orElseThrow();
    assertThat(latest.step()).isEqualTo(120);
    assertThat(latest.time()).isEqualTo(time);
    assertThat(latest.metrics()).containsEntry("eval_loss", 1.25).containsEntry("loss", 1.5);
    assertThat(latest.manifest().files())
        .extracting(Manifest.FileEntry::name)
        .containsExactly("adapter.safetensors", "optimizer/moments.bin", "trainer_state.json");

    // The manifest is plain JSON with the documented fields.
    JsonNode json = new ObjectMapper().readTree(store.getBytes("step-000000120/manifest.json"));
    assertThat(json.get("formatVersion").asInt()).isEqualTo(1);
    assertThat(json.get("step").asLong()).isEqualTo(120);
    assertThat(json.get("trainingRevision").asText()).isEqualTo(REV);
    assertThat(json.get("time").asText()).isEqualTo("2026-11-24T12:00:00Z");
    assertThat(json.get("metrics").get("eval_loss").asDouble()).isEqualTo(1.25);
    assertThat(json.get("files").get(0).get("size").asLong()).isEqualTo(600_000);
    assertThat(json.get("files").get(0).get("sha256").asText())
        .isEqualTo(CheckpointStore.sha256(weights));

    Path local = tmp.resolve("restore");
    checkpoints.download(latest, local);
    assertThat(CheckpointStore.sha256(local.resolve("adapter.safetensors")))
        .isEqualTo(CheckpointStore.sha256(weights));
    assertThat(local.resolve("optimizer/moments.bin")).hasSameBinaryContentAs(optimizer);
    assertThat(local.resolve("trainer_state.json")).hasContent("{\"step\":120}");

    // Newer commits win; keys sort by step.
    commit(1000, 0.5, "w2");
    assertThat(checkpoints.latestValid(REV).orElseThrow().step()).isEqualTo(1000);
    assertThat(store.list("", false))
        .extracting(ObjectInfo::key)
        .containsExactly("step-000000120/", "step-000001000/");
  }

  @Test
  void emptyStoreHasNoCheckpoint() throws Exception {
    assertThat(checkpoints.latestValid(REV)).isEmpty();
    assertThat(checkpoints.prune(2, "eval_loss", false, Set.of()).kept()).isEmpty();
  }

  @Test
  void partialCheckpointIsInvisibleThenPruned() throws Exception {
    commit(100, 1.0, "a");
    // A pod died after uploading the files of step 200, before the manifest.
    store.put("step-000000200/deadbeef/adapter.safetensors", "half".getBytes(UTF_8));
    store.put("step-000000200/deadbeef/optimizer.bin", "done".getBytes(UTF_8));

    Scan scan = checkpoints.scan(REV);
    assertThat(scan.latest().orElseThrow().step()).isEqualTo(100);
    assertThat(scan.skipped()).hasSize(1);
    assertThat(scan.skipped().get(0).step()).isEqualTo(200);
    assertThat(scan.skipped().get(0).reason()).contains("no manifest.json");

    // Newest folder without a manifest may be a commit in progress: left alone.
    PruneResult early = checkpoints.prune(3, "eval_loss", false, Set.of());
    assertThat(early.deletedOrphans()).isEmpty();
    assertThat(store.exists("step-000000200/deadbeef/optimizer.bin")).isTrue();

    commit(300, 0.9, "c");
    PruneResult result = checkpoints.prune(3, "eval_loss", false, Set.of());
    assertThat(result.deletedOrphans()).containsExactly(200L);
    assertThat(result.kept()).containsExactly(100L, 300L);
    assertThat(store.list("step-000000200/", true)).isEmpty();
    assertThat(checkpoints.latestValid(REV).orElseThrow().step()).isEqualTo(300);
  }

  @Test
  void truncatedFileIsDetectedAndThePreviousCheckpointUsed() throws Exception {
    commit(100, 1.0, "a");
    Checkpoint bad = commit(200, 0.9, "b");
    String key = fileKey(bad, "weights.bin");
    byte[] bytes = store.getBytes(key);
    store.put(key, Arrays.copyOf(bytes, bytes.length / 2));

    Scan scan = checkpoints.scan(REV);
    assertThat(scan.latest().orElseThrow().step()).isEqualTo(100);
    assertThat(scan.skipped())
        .singleElement()
        .satisfies(
            s -> {
              assertThat(s.step()).isEqualTo(200);
              assertThat(s.reason())
                  .contains("weights.bin")
                  .contains("bytes, manifest says " + bytes.length);
            });
  }

  @Test
  void bitFlippedFileIsDetectedByChecksum() throws Exception {
    commit(100, 1.0, "a");
    Checkpoint bad = commit(200, 0.9, "b");
    String key = fileKey(bad, "weights.bin");
    byte[] bytes = store.getBytes(key);
    bytes[bytes.length / 3] ^= 0x10;
    store.put(key, bytes);

    Scan scan = checkpoints.scan(REV);
    assertThat(scan.latest().orElseThrow().step()).isEqualTo(100);
    assertThat(scan.skipped().get(0).reason()).contains("weights.bin").contains("SHA-256");

    // Downloading the corrupt checkpoint fails and leaves no bad file behind.
    Path local = tmp.resolve("restore-bad");
    assertThatThrownBy(() -> checkpoints.download(bad, local))
        .isInstanceOf(CorruptCheckpointException.class)
        .hasMessageContaining("step 200")
        .hasMessageContaining("SHA-256");
    assertThat(local.resolve("weights.bin")).doesNotExist();

    // Resume in one pass: the corrupt one is fetched, rejected and removed, the previous one kept.
    Path resume = tmp.resolve("resume");
    Scan restored = checkpoints.restoreLatest(REV, resume);
    assertThat(restored.latest().orElseThrow().step()).isEqualTo(100);
    assertThat(restored.skipped()).extracting(Skipped::step).containsExactly(200L);
    assertThat(resume.resolve("weights.bin")).hasContent("a");
    assertThat(resume.resolve("state.json")).hasContent("{\"step\":100}");
  }

  @Test
  void unparseableOrMisplacedManifestIsSkipped() throws Exception {
    commit(100, 1.0, "a");
    store.put("step-000000200/manifest.json", "{not json".getBytes(UTF_8));
    store.put("step-000000300/manifest.json", store.getBytes("step-000000100/manifest.json"));
    Scan scan = checkpoints.scan(REV);
    assertThat(scan.latest().orElseThrow().step()).isEqualTo(100);
    assertThat(scan.skipped()).extracting(Skipped::step).containsExactly(300L, 200L);
    assertThat(scan.skipped().get(0).reason()).contains("manifest says step 100");
    assertThat(scan.skipped().get(1).reason()).contains("manifest does not parse");
  }

  @Test
  void secondCommitOfTheSameStepLosesAndTheFirstStaysIntact() throws Exception {
    Checkpoint first = commit(100, 1.0, "first");
    CommitResult second =
        checkpoints.commit(
            100,
            Map.of("weights.bin", randomFile("other.bin", 50_000, 9)),
            CheckpointMetadata.of(REV, Map.of("eval_loss", 0.1)));
    assertThat(second.committed()).isFalse();
    assertThat(second.checkpoint()).isNull();
    assertThat(second.message()).contains("not committed").contains("left unchanged");
    assertThat(checkpoints.latestValid(REV).orElseThrow().manifest()).isEqualTo(first.manifest());
  }

  @Test
  void commitThatLosesTheManifestRaceChangesNothingCommitted() throws Exception {
    Checkpoint first = commit(100, 1.0, "first");
    List<String> before = keys("step-000000100/");
    // A stale pod whose existence check saw no manifest: it uploads, then putIfAbsent fails.
    CheckpointStore stale = new CheckpointStore(new BlindExists(store), tmp.resolve("scratch2"));
    CommitResult second =
        stale.commit(
            100,
            Map.of("weights.bin", randomFile("other.bin", 50_000, 9)),
            CheckpointMetadata.of(REV, Map.of("eval_loss", 0.1)));
    assertThat(second.committed()).isFalse();
    assertThat(second.message()).contains("another writer committed this step first");
    assertThat(keys("step-000000100/")).isEqualTo(before); // its uploads were removed
    Checkpoint latest = checkpoints.latestValid(REV).orElseThrow();
    assertThat(latest.manifest()).isEqualTo(first.manifest());
    Path local = tmp.resolve("restore");
    checkpoints.download(latest, local);
    assertThat(local.resolve("weights.bin")).hasContent("first");
  }

  @Test
  void pruneKeepsLastBestAndPinned() throws Exception {
    double[] evalLoss = {0.0, 2.0, 1.8, 0.7, 1.5, 1.2, 1.1, 1.0, 0.9};
    for (int i = 1; i <= 8; i++) {
      commit(i * 100L, evalLoss[i], "w" + i);
    }
    // Pinned 100 (the operator's status pointer), best eval_loss at 300, last 2: 700, 800.
    PruneResult result = checkpoints.prune(2, "eval_loss", false, Set.of(100L));
    assertThat(result.kept()).containsExactly(100L, 300L, 700L, 800L);
    assertThat(result.deleted()).containsExactly(200L, 400L, 500L, 600L);
    assertThat(store.list("", false))
        .extracting(ObjectInfo::key)
        .containsExactly(
            "step-000000100/", "step-000000300/", "step-000000700/", "step-000000800/");
    assertThat(checkpoints.latestValid(REV).orElseThrow().step()).isEqualTo(800);
    Checkpoint pinned = commitOf(100);
    checkpoints.download(pinned, tmp.resolve("pinned"));
    assertThat(tmp.resolve("pinned/weights.bin")).hasContent("w1");

    // Higher is better picks another best; the pinned step survives keepLast 1.
    PruneResult again = checkpoints.prune(1, "eval_loss", true, Set.of(100L));
    assertThat(again.kept()).containsExactly(100L, 800L); // highest eval_loss of the rest: 100
    assertThat(again.deleted()).containsExactly(300L, 700L);
    // A pinned step is never deleted, even when invalid.
    store.delete(fileKey(commitOf(100), "weights.bin"));
    PruneResult last = checkpoints.prune(1, null, false, Set.of(100L));
    assertThat(last.kept()).containsExactly(800L);
    assertThat(store.exists("step-000000100/manifest.json")).isTrue();
  }

  @Test
  void interruptedDeletionLeavesAnInvisibleFolderThatTheNextPruneRemoves() throws Exception {
    commit(100, 1.0, "a");
    commit(200, 0.9, "b");
    store.delete("step-000000100/manifest.json"); // a prune that died after the manifest
    assertThat(checkpoints.scan(REV).skipped()).isEmpty(); // newest is fine: 100 not reached
    assertThat(checkpoints.latestValid(REV).orElseThrow().step()).isEqualTo(200);
    PruneResult result = checkpoints.prune(5, "eval_loss", false, Set.of());
    assertThat(result.deletedOrphans()).containsExactly(100L);
    assertThat(store.list("step-000000100/", true)).isEmpty();
  }

  @Test
  void pruneNeverDropsTheLastGoodCheckpointForACorruptNewerOne() throws Exception {
    commit(100, 1.0, "a");
    Checkpoint bad = commit(200, 0.9, "b");
    String key = fileKey(bad, "weights.bin");
    byte[] bytes = store.getBytes(key);
    bytes[0] ^= 1;
    store.put(key, bytes);
    PruneResult result = checkpoints.prune(1, null, false, Set.of());
    assertThat(result.kept()).containsExactly(100L, 200L);
    assertThat(checkpoints.latestValid(REV).orElseThrow().step()).isEqualTo(100);
  }

  @Test
  void pruneRemovesStrayUploadsOfLosingCommitsInKeptFolders() throws Exception {
    commit(100, 1.0, "a");
    store.put("step-000000100/0badf00d/weights.bin", "loser".getBytes(UTF_8));
    PruneResult result = checkpoints.prune(1, null, false, Set.of());
    assertThat(result.strayObjectsDeleted()).isEqualTo(1);
    assertThat(store.exists("step-000000100/0badf00d/weights.bin")).isFalse();
    assertThat(checkpoints.latestValid(REV)).isPresent();
  }

  @Test
  void pruneDeletesOnlyWhatCommitsWrote() throws Exception {
    // Files the trainer did not write: the owner marker, a user's notes at the root and inside
    // step folders (a pruned one, a kept one, an orphan), and a folder that only looks like one.
    byte[] owner = "{\"namespace\":\"ns\",\"name\":\"job\",\"uid\":\"u-1\"}".getBytes(UTF_8);
    store.put("owner.json", owner);
    store.put("README.txt", "notes".getBytes(UTF_8));
    commit(100, 1.0, "a");
    store.put("step-000000100/notes.txt", "mine".getBytes(UTF_8));
    store.put("step-000000100/backup/weights.bin", "mine".getBytes(UTF_8));
    store.put("step-000000150/mine.bin", "orphan-looking".getBytes(UTF_8));
    commit(200, 0.9, "b");
    store.put("step-000000200/old-attempt/x.bin", "mine".getBytes(UTF_8));
    commit(300, 0.8, "c");

    PruneResult result = checkpoints.prune(1, null, false, Set.of());

    assertThat(result.kept()).containsExactly(300L);
    assertThat(result.deleted()).containsExactly(100L, 200L);
    assertThat(result.deletedOrphans()).as("a folder with only a user's file").isEmpty();
    assertThat(store.getBytes("owner.json")).isEqualTo(owner);
    assertThat(keys(""))
        .containsExactlyInAnyOrder(
            "owner.json",
            "README.txt",
            "step-000000100/notes.txt",
            "step-000000100/backup/weights.bin",
            "step-000000150/mine.bin",
            "step-000000200/old-attempt/x.bin",
            "step-000000300/manifest.json",
            fileKey(commitOf(300), "weights.bin"),
            fileKey(commitOf(300), "state.json"));
    // A second prune changes nothing and still finds the user's files harmless.
    PruneResult again = checkpoints.prune(1, null, false, Set.of());
    assertThat(again.deleted()).isEmpty();
    assertThat(again.deletedInvalid()).isEmpty();
    assertThat(again.deletedOrphans()).isEmpty();
    assertThat(again.strayObjectsDeleted()).isZero();
    assertThat(keys("")).hasSize(9);
  }

  @Test
  void otherRevisionIsIgnored() throws Exception {
    commit(100, 1.0, "a");
    checkpoints.commit(
        200, Map.of("weights.bin", text("b.bin", "b")), CheckpointMetadata.of("rev-b", Map.of()));
    Scan scan = checkpoints.scan(REV);
    assertThat(scan.latest().orElseThrow().step()).isEqualTo(100);
    assertThat(scan.skipped().get(0).reason())
        .contains("written by training revision rev-b, this run is rev-a");
    assertThat(checkpoints.latestValid("rev-b").orElseThrow().step()).isEqualTo(200);
    assertThat(checkpoints.latestValid("rev-c")).isEmpty();
  }

  @Test
  void aNewTrainingRevisionReplacesTheSameStepOfTheSupersededOne() throws Exception {
    // A restartNonce run reuses checkpoints.uri: step 100 of the old run must not block it.
    commit(100, 1.0, "a");
    CommitResult result =
        checkpoints.commit(
            100,
            Map.of("weights.bin", text("new.bin", "new")),
            CheckpointMetadata.of("rev-b", Map.of()));
    assertThat(result.committed()).as(result.message()).isTrue();
    assertThat(checkpoints.latestValid("rev-b").orElseThrow().step()).isEqualTo(100);
    assertThat(checkpoints.latestValid(REV)).isEmpty();
    // The same revision is still protected: a stale pod of rev-b loses.
    assertThat(
            checkpoints
                .commit(
                    100,
                    Map.of("weights.bin", text("stale.bin", "stale")),
                    CheckpointMetadata.of("rev-b", Map.of()))
                .committed())
        .isFalse();
  }

  @Test
  void invalidInputsAreRejectedBeforeAnyUpload() throws Exception {
    Path f = text("x.bin", "x");
    CheckpointMetadata meta = CheckpointMetadata.of(REV, Map.of());
    assertThatThrownBy(() -> checkpoints.commit(-1, Map.of("x", f), meta))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> checkpoints.commit(1, Map.of("../x", f), meta))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("invalid checkpoint file name");
    assertThatThrownBy(() -> checkpoints.commit(1, Map.of("a", f, "b%2Fc", f), meta))
        .isInstanceOf(InvalidKeyException.class);
    assertThatThrownBy(() -> checkpoints.commit(1, Map.of("x", tmp.resolve("missing")), meta))
        .hasMessageContaining("is not a regular file");
    assertThatThrownBy(() -> CheckpointMetadata.of(REV, Map.of("loss", Double.NaN)))
        .hasMessageContaining("not a finite number");
    assertThat(store.list("", true)).isEmpty();
  }

  // ---------------------------------------------------------------- helpers

  Checkpoint commit(long step, double evalLoss, String content) throws IOException {
    CommitResult r =
        checkpoints.commit(
            step,
            Map.of(
                "weights.bin",
                text("w-" + step + ".bin", content),
                "state.json",
                text("s-" + step + ".json", "{\"step\":" + step + "}")),
            CheckpointMetadata.of(REV, Map.of("eval_loss", evalLoss)));
    assertThat(r.committed()).isTrue();
    return r.checkpoint();
  }

  Checkpoint commitOf(long step) throws IOException {
    return new Checkpoint(
        step,
        CheckpointStore.folderOf(step),
        "",
        Manifest.parse(store.getBytes(CheckpointStore.folderOf(step) + "manifest.json")));
  }

  static String fileKey(Checkpoint cp, String name) {
    return cp.folder() + cp.manifest().attempt() + "/" + name;
  }

  List<String> keys(String prefix) throws IOException {
    return store.list(prefix, true).stream().map(ObjectInfo::key).toList();
  }

  Path text(String name, String content) throws IOException {
    Path file = tmp.resolve("src").resolve(name);
    Files.createDirectories(file.getParent());
    return Files.writeString(file, content);
  }

  Path randomFile(String name, int size, long seed) throws IOException {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    Path file = tmp.resolve("src").resolve(name);
    Files.createDirectories(file.getParent());
    return Files.write(file, bytes);
  }

  /** A store whose existence checks always say "absent", like a pod with a stale view. */
  static final class BlindExists implements ObjectStore {
    private final ObjectStore d;

    BlindExists(ObjectStore delegate) {
      this.d = delegate;
    }

    @Override
    public StorageUri root() {
      return d.root();
    }

    @Override
    public void put(String key, byte[] bytes) throws IOException {
      d.put(key, bytes);
    }

    @Override
    public void put(String key, Path file) throws IOException {
      d.put(key, file);
    }

    @Override
    public boolean putIfAbsent(String key, byte[] bytes) throws IOException {
      return d.putIfAbsent(key, bytes);
    }

    @Override
    public void get(String key, Path target) throws IOException {
      d.get(key, target);
    }

    @Override
    public byte[] getBytes(String key) throws IOException {
      return d.getBytes(key);
    }

    @Override
    public List<ObjectInfo> list(String prefix, boolean recursive) throws IOException {
      return d.list(prefix, recursive);
    }

    @Override
    public OptionalLong size(String key) {
      return OptionalLong.empty();
    }

    @Override
    public void delete(String key) throws IOException {
      d.delete(key);
    }

    @Override
    public void delete(Collection<String> keys) throws IOException {
      d.delete(keys);
    }

    @Override
    public void close() {}
  }
}
