package io.kubetune.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class StorageUriTest {

  @ParameterizedTest
  @ValueSource(
      strings = {"pvc://claim/data/%/train.jsonl", "s3://bucket/%zz/model/", "s3://bucket/a%2"})
  void aPercentThatIsNotAnEscapeNamesTheFieldAndTheFix(String uri) {
    assertThatThrownBy(() -> StorageUri.parse("spec.dataset.train", uri))
        .isInstanceOfSatisfying(
            InvalidFieldException.class,
            e -> {
              assertThat(e.field()).isEqualTo("spec.dataset.train");
              assertThat(e.problem()).contains("not a valid escape");
              assertThat(e.fix()).contains("%25");
            });
    assertThat(uri).doesNotMatch(StorageUri.PATTERN);
  }

  @Test
  void controlCharactersAreRefusedLiterallyAndEscaped() {
    assertThatThrownBy(() -> StorageUri.parse("spec.baseModel.uri", "s3://bucket/a\u0000b/"))
        .isInstanceOf(InvalidFieldException.class)
        .hasMessageContaining("spec.baseModel.uri")
        .hasMessageContaining("U+0000")
        .hasMessageNotContaining("\u0000");
    assertThatThrownBy(() -> StorageUri.parse("spec.baseModel.uri", "s3://bucket/a%00b/"))
        .isInstanceOf(InvalidFieldException.class)
        .hasMessageContaining("U+0000");
    assertThat("s3://bucket/a\u0000b/").doesNotMatch(StorageUri.PATTERN);
  }

  @Test
  void escapesThatAreNotUtf8AndTraversalAreRefused() {
    assertThatThrownBy(() -> StorageUri.parse("f", "s3://bucket/%ff/"))
        .hasMessageContaining("not UTF-8");
    assertThatThrownBy(() -> StorageUri.parse("f", "s3://bucket/a/%2e%2e/b"))
        .hasMessageContaining("'..' path segment");
    assertThatThrownBy(() -> StorageUri.parse("f", "s3://bucket/a//b"))
        .hasMessageContaining("empty path segment");
  }

  @Test
  void anExportFolderIsOnePathSegmentPerRevision() {
    assertThat(TrainerLayout.exportFolder("3fa9c2d1e0b4")).isEqualTo("final/3fa9c2d1e0b4/");
    for (String bad : new String[] {null, "", "a/b", "..", "a..b", "/x", " r"}) {
      assertThatThrownBy(() -> TrainerLayout.exportFolder(bad))
          .as(bad)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("cannot name an export folder");
    }
  }

  @Test
  void validUrisParseAndKnowTheLayout() {
    StorageUri pvc = StorageUri.parse("f", "pvc://claim/runs/a%20b");
    assertThat(pvc.claimName()).contains("claim");
    assertThat(pvc.finalOutput("3fa9c2d1e0b4").toString())
        .isEqualTo("pvc://claim/runs/a%20b/final/3fa9c2d1e0b4/");
    assertThat(pvc.finalOutput("3fa9c2d1e0b4").inPod())
        .isEqualTo(
            "file://" + TrainerLayout.PVC_MOUNT_ROOT + "/claim/runs/a%20b/final/3fa9c2d1e0b4/");
    StorageUri s3 = StorageUri.parse("f", "s3://bucket");
    assertThat(s3.finalOutput("r1").toString()).isEqualTo("s3://bucket/final/r1/");
    assertThat(s3.inPod()).isEqualTo("s3://bucket");
  }

  @Test
  void endpointsWithUserInfoAreRefusedWithoutEchoingTheSecret() {
    assertThatThrownBy(
            () ->
                StorageUri.checkEndpoint(
                    "spec.storage.endpoint", "http://AKIAPLANTED:s3cr3tPLANTED@minio.storage:9000"))
        .isInstanceOfSatisfying(
            InvalidFieldException.class,
            e -> {
              assertThat(e.field()).isEqualTo("spec.storage.endpoint");
              assertThat(e.getMessage())
                  .contains("user info")
                  .contains("http://***@minio.storage:9000")
                  .doesNotContain("PLANTED");
              assertThat(e.fix()).contains("credentialsSecret");
            });
    assertThat("http://KEY:SECRET@minio:9000").doesNotMatch(StorageUri.ENDPOINT_PATTERN);
    StorageUri.checkEndpoint("e", "http://minio.storage:9000");
    StorageUri.checkEndpoint("e", "https://s3.example.com/path@x");
  }
}
