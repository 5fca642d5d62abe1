package io.kubetune.trainer.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class StorageUriTest {

  @Test
  void parsesS3UrisAsFolders() {
    StorageUri uri = StorageUri.parse("s3://my-bucket/jobs/ns/run-1");
    assertThat(uri.isS3()).isTrue();
    assertThat(uri.bucket()).isEqualTo("my-bucket");
    assertThat(uri.prefix()).isEqualTo("jobs/ns/run-1/");
    assertThat(uri).hasToString("s3://my-bucket/jobs/ns/run-1/");
    assertThat(uri.fullKey("step-10/manifest.json"))
        .isEqualTo("jobs/ns/run-1/step-10/manifest.json");
    assertThat(uri.resolve("a.bin")).isEqualTo("s3://my-bucket/jobs/ns/run-1/a.bin");
    assertThat(uri.child("checkpoints")).hasToString("s3://my-bucket/jobs/ns/run-1/checkpoints/");

    assertThat(StorageUri.parse("s3://bucket").prefix()).isEmpty();
    assertThat(StorageUri.parse("s3://bucket/").prefix()).isEmpty();
    assertThat(StorageUri.parse("S3://bucket/x/").scheme()).isEqualTo("s3");
  }

  @Test
  void parsesFileUris() {
    StorageUri uri = StorageUri.parse("file:///var/run/kubetune/pvc/data/ckpt");
    assertThat(uri.isFile()).isTrue();
    assertThat(uri.path()).isEqualTo(Path.of("/var/run/kubetune/pvc/data/ckpt/"));
    assertThat(uri).hasToString("file:///var/run/kubetune/pvc/data/ckpt/");
    assertThat(StorageUri.parse("file:/tmp/x").path()).isEqualTo(Path.of("/tmp/x"));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "bucket/key",
        "http://host/bucket",
        "gs://bucket/x",
        "s3://",
        "s3://Bad_Bucket/x",
        "s3://ab/x",
        "s3://bucket/../x",
        "s3://bucket/a//b",
        "s3://bucket/%2e%2e/x",
        "s3://bucket/x?versionId=1",
        "file://host/tmp/x",
        "file:relative/x",
        "file:///tmp/../etc"
      })
  void rejectsOtherForms(String uri) {
    assertThatThrownBy(() -> StorageUri.parse(uri)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void unsupportedSchemeNamesTheAcceptedForms() {
    assertThatThrownBy(() -> StorageUri.parse("gs://b/x"))
        .hasMessageContaining("s3://bucket/prefix/")
        .hasMessageContaining("file:///absolute/path/");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "step-100/manifest.json",
        "a",
        "a/b/c.safetensors",
        "..hidden",
        "a..b",
        "...",
        ".config",
        "name with spaces",
        "100%",
        "%41"
      })
  void acceptsOrdinaryKeys(String key) {
    assertThat(Keys.checkKey(key, "s3://b/p/")).isEqualTo(key);
  }

  @Test
  void rejectionNamesKeyReasonAndFix() {
    assertThatThrownBy(() -> Keys.checkKey("a/%2E%2e/b", "s3://bucket/run/"))
        .isInstanceOf(InvalidKeyException.class)
        .hasMessageStartingWith("Invalid object key \"a/%2E%2e/b\" under s3://bucket/run/:")
        .hasMessageContaining("percent-encoded '.'")
        .hasMessageContaining("Use a relative key");
    assertThatThrownBy(() -> Keys.checkKey("a/\u0000b", "s3://bucket/run/"))
        .hasMessageContaining("a/\\u0000b")
        .hasMessageContaining("control character");
    assertThatThrownBy(() -> Keys.checkKey("C:/x", "s3://bucket/run/"))
        .hasMessageContaining("drive letter");
    assertThatThrownBy(() -> Keys.checkKey("x".repeat(1000), "s3://bucket/run/"))
        .hasMessageContaining("longer than");
  }

  @Test
  void prefixesMayBeEmptyOrEndWithSlash() {
    assertThat(Keys.checkPrefix("", "r")).isEmpty();
    assertThat(Keys.checkPrefix(null, "r")).isEmpty();
    assertThat(Keys.checkPrefix("step-", "r")).isEqualTo("step-");
    assertThat(Keys.checkPrefix("a/b/", "r")).isEqualTo("a/b/");
    assertThatThrownBy(() -> Keys.checkPrefix("a//", "r")).isInstanceOf(InvalidKeyException.class);
    assertThatThrownBy(() -> Keys.checkPrefix("/", "r")).isInstanceOf(InvalidKeyException.class);
  }
}
