package io.kubetune.trainer.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.api.trainer.TrainerConfig;
import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class StorageSettingsTest {

  @Test
  void mirrorsTheTrainerConfigStorageSettings() {
    TrainerConfig.StorageSettings config = new TrainerConfig.StorageSettings();
    config.endpoint = "http://minio.storage:9000";
    config.region = "eu-west-1";
    config.pathStyle = true;
    StorageSettings s = StorageSettings.from(config);
    assertThat(s.endpoint()).isEqualTo(URI.create("http://minio.storage:9000"));
    assertThat(s.region()).isEqualTo("eu-west-1");
    assertThat(s.pathStyle()).isTrue();
    assertThat(s.partSize()).isEqualTo(StorageSettings.DEFAULT_PART_SIZE);
    assertThat(s.retry()).isEqualTo(RetryPolicy.DEFAULT);

    assertThat(StorageSettings.from(null)).isEqualTo(StorageSettings.defaults());
    assertThat(StorageSettings.from(new TrainerConfig.StorageSettings()).pathStyle()).isFalse();
  }

  @Test
  void readsTheServingPodEnvironment() {
    StorageSettings s =
        StorageSettings.fromEnvironment(
            Map.of(
                "AWS_ENDPOINT_URL_S3", "http://s3.local:9000",
                "AWS_REGION", "us-west-2",
                "KUBETUNE_S3_PATH_STYLE", "true"));
    assertThat(s.endpoint()).isEqualTo(URI.create("http://s3.local:9000"));
    assertThat(s.region()).isEqualTo("us-west-2");
    assertThat(s.pathStyle()).isTrue();
    assertThat(StorageSettings.fromEnvironment(Map.of())).isEqualTo(StorageSettings.defaults());
  }

  @Test
  void refusesPartsBelowTheS3Minimum() {
    assertThatThrownBy(() -> StorageSettings.defaults().withPartSize(1024 * 1024))
        .hasMessageContaining("5 MiB");
    assertThatThrownBy(() -> StorageSettings.defaults().withListPageSize(1001))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void factoryPicksTheImplementationByScheme(@org.junit.jupiter.api.io.TempDir Path dir) {
    try (ObjectStore file = ObjectStores.forUri(dir.toUri().toString(), null)) {
      assertThat(file).isInstanceOf(FileObjectStore.class);
    }
    try (ObjectStore s3 =
        ObjectStores.forUri(
            "s3://bucket/run/",
            StorageSettings.defaults().withEndpoint(URI.create("http://127.0.0.1:1")))) {
      assertThat(s3).isInstanceOf(S3ObjectStore.class);
      assertThat(s3.root()).hasToString("s3://bucket/run/");
      assertThat(s3.toString()).contains("endpoint http://127.0.0.1:1");
    }
  }

  @Test
  void endpointWithUserInfoIsRefusedWithoutEchoingIt() {
    assertThatThrownBy(
            () ->
                ObjectStores.forUri(
                    "s3://bucket/run/",
                    StorageSettings.defaults()
                        .withEndpoint(URI.create("http://user:hunter2@127.0.0.1:1"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("must not contain user info")
        .hasMessageNotContaining("hunter2");
  }
}
