package io.kubetune.trainer.storage;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Behaviour every {@link ObjectStore} must have; run against S3 (S3Proxy) and the file store. */
abstract class ObjectStoreContractTest {
  static final long PART_SIZE = StorageSettings.MIN_PART_SIZE;

  @TempDir Path tmp;
  ObjectStore store;

  /** A fresh, empty store for one test; {@code name} is unique per test method. */
  abstract ObjectStore open(String name) throws Exception;

  @BeforeEach
  void openStore(TestInfo info) throws Exception {
    store =
        open(info.getTestMethod().orElseThrow().getName().toLowerCase() + "-" + System.nanoTime());
  }

  @AfterEach
  void closeStore() {
    if (store != null) {
      store.close();
    }
  }

  @Test
  void bytesRoundTripAndOverwrite() throws Exception {
    store.put("a/b.txt", "hello".getBytes(UTF_8));
    assertThat(store.getBytes("a/b.txt")).asString(UTF_8).isEqualTo("hello");
    store.put("a/b.txt", "hello again".getBytes(UTF_8));
    assertThat(store.getBytes("a/b.txt")).asString(UTF_8).isEqualTo("hello again");
    assertThat(store.size("a/b.txt")).hasValue(11);
    assertThat(store.exists("a/b.txt")).isTrue();
    assertThat(store.exists("a/c.txt")).isFalse();
    assertThat(store.size("a/c.txt")).isEqualTo(OptionalLong.empty());
  }

  @Test
  void emptyObject() throws Exception {
    store.put("empty", new byte[0]);
    assertThat(store.getBytes("empty")).isEmpty();
    assertThat(store.size("empty")).hasValue(0);
  }

  @Test
  void fileRoundTripStreamsToTarget() throws Exception {
    Path source = randomFile("small.bin", 300_000, 1);
    store.put("weights/small.bin", source);
    Path target = tmp.resolve("out/deeper/small.bin");
    store.get("weights/small.bin", target);
    assertThat(sha256(target)).isEqualTo(sha256(source));
    // Replacing an existing target works and leaves no temporary files behind.
    store.get("weights/small.bin", target);
    try (var files = Files.list(target.getParent())) {
      assertThat(files).containsExactly(target);
    }
  }

  @Test
  void largeFileInPartsKeepsContent() throws Exception {
    Path source = randomFile("big.bin", 12L * 1024 * 1024 + 12345, 2);
    store.put("ckpt/step-1/model.safetensors", source);
    assertThat(store.size("ckpt/step-1/model.safetensors")).hasValue(Files.size(source));
    Path target = tmp.resolve("big.copy");
    store.get("ckpt/step-1/model.safetensors", target);
    assertThat(sha256(target)).isEqualTo(sha256(source));
  }

  @Test
  void putOfAMissingSourceFileFailsClearly() {
    assertThatThrownBy(() -> store.put("x.bin", tmp.resolve("missing.bin")))
        .isInstanceOf(StorageException.class)
        .hasMessageContaining("missing.bin")
        .hasMessageContaining("x.bin");
  }

  @Test
  void getOfMissingObjectIsNotFound() {
    assertThatThrownBy(() -> store.getBytes("nope/missing.json"))
        .isInstanceOf(ObjectNotFoundException.class)
        .hasMessageContaining("nope/missing.json");
    assertThatThrownBy(() -> store.get("nope/missing.json", tmp.resolve("x")))
        .isInstanceOf(ObjectNotFoundException.class);
    assertThat(tmp.resolve("x")).doesNotExist();
  }

  @Test
  void listRecursiveWithPrefixAcrossPages() throws Exception {
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      String key = String.format("step-%03d/file-%d.bin", i, i);
      store.put(key, new byte[i]);
      expected.add(key);
    }
    store.put("step-005/nested/deep.bin", new byte[] {1});
    store.put("other/x", new byte[] {1});
    expected.add(6, "step-005/nested/deep.bin");

    List<ObjectInfo> all = store.list("step-", true);
    assertThat(all).extracting(ObjectInfo::key).containsExactlyElementsOf(expected);
    assertThat(all).noneMatch(ObjectInfo::folder);
    assertThat(all.get(3).size()).isEqualTo(3);

    assertThat(store.list("step-005/", true))
        .extracting(ObjectInfo::key)
        .containsExactly("step-005/file-5.bin", "step-005/nested/deep.bin");
    assertThat(store.list("", true)).hasSize(12);
    assertThat(store.list("absent/", true)).isEmpty();
  }

  @Test
  void listNonRecursiveShowsFolders() throws Exception {
    for (int i = 0; i < 7; i++) {
      store.put("run/step-" + i + "/manifest.json", new byte[] {1});
    }
    store.put("run/latest.json", new byte[] {1, 2});
    List<ObjectInfo> children = store.list("run/", false);
    assertThat(children).hasSize(8);
    assertThat(children.get(0)).isEqualTo(new ObjectInfo("run/latest.json", 2, false));
    assertThat(children.get(1)).isEqualTo(new ObjectInfo("run/step-0/", -1, true));
    assertThat(store.list("", false)).containsExactly(new ObjectInfo("run/", -1, true));
  }

  @Test
  void batchDeleteRemovesExactlyTheKeys() throws Exception {
    List<String> doomed = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      store.put("d/obj-" + i, new byte[] {(byte) i});
      if (i % 2 == 0) {
        doomed.add("d/obj-" + i);
      }
    }
    doomed.add("d/never-existed");
    store.delete(doomed);
    assertThat(store.list("d/", true))
        .extracting(ObjectInfo::key)
        .containsExactly("d/obj-1", "d/obj-3", "d/obj-5", "d/obj-7");
    store.delete("d/obj-1");
    store.delete("d/obj-1"); // idempotent
    assertThat(store.exists("d/obj-1")).isFalse();
  }

  @Test
  void batchDeleteValidatesEveryKeyFirst() throws Exception {
    store.put("keep", new byte[] {1});
    assertThatThrownBy(() -> store.delete(List.of("keep", "../escape")))
        .isInstanceOf(InvalidKeyException.class);
    assertThat(store.exists("keep")).isTrue();
  }

  @Test
  void putIfAbsentCreatesOnceAndNeverOverwrites() throws Exception {
    assertThat(store.putIfAbsent("step-10/manifest.json", "first".getBytes(UTF_8))).isTrue();
    assertThat(store.putIfAbsent("step-10/manifest.json", "second".getBytes(UTF_8))).isFalse();
    assertThat(store.getBytes("step-10/manifest.json")).asString(UTF_8).isEqualTo("first");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\\..\\b",
        "%2e%2e/x",
        "a%2Fb",
        "..%2f..%2fx",
        "%252e%252e/x",
        "",
        "a/"
      })
  void keysEscapingThePrefixAreRejected(String key) {
    assertThatThrownBy(() -> store.put(key, new byte[] {1}))
        .isInstanceOf(InvalidKeyException.class)
        .hasMessageContaining("Invalid object key \"" + key + "\"")
        .hasMessageContaining("Use a relative key");
    assertThatThrownBy(() -> store.getBytes(key)).isInstanceOf(InvalidKeyException.class);
    assertThatThrownBy(() -> store.putIfAbsent(key, new byte[] {1}))
        .isInstanceOf(InvalidKeyException.class);
    assertThatThrownBy(() -> store.delete(key)).isInstanceOf(InvalidKeyException.class);
  }

  @Test
  void listPrefixIsValidatedToo() {
    assertThatThrownBy(() -> store.list("../", true)).isInstanceOf(InvalidKeyException.class);
  }

  Path randomFile(String name, long size, long seed) throws IOException {
    Path file = tmp.resolve(name);
    Random random = new Random(seed);
    byte[] chunk = new byte[1 << 20];
    try (OutputStream out = Files.newOutputStream(file)) {
      for (long left = size; left > 0; ) {
        random.nextBytes(chunk);
        int n = (int) Math.min(chunk.length, left);
        out.write(chunk, 0, n);
        left -= n;
      }
    }
    return file;
  }

  static String sha256(Path file) throws Exception {
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
      in.transferTo(OutputStream.nullOutputStream());
    }
    return HexFormat.of().formatHex(digest.digest());
  }
}
