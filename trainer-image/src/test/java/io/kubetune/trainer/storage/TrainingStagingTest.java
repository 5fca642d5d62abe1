package io.kubetune.trainer.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.cli.TrainerCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A training run whose model, data and output live in S3 (a real S3Proxy on 127.0.0.1). */
class TrainingStagingTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static S3ProxyServer s3;
  static StorageSettings settings;

  @TempDir static Path dir;

  @BeforeAll
  static void startS3AndUploadInputs() throws Exception {
    S3ProxyServer.useTestCredentials();
    s3 = S3ProxyServer.start("models", "data", "runs");
    settings = StorageSettings.defaults().withEndpoint(s3.endpoint()).withPathStyle(true);

    Path model = dir.resolve("tiny");
    int code =
        TrainerCli.run(
            new String[] {"init-tiny-model", "--output", model.toString(), "--seed", "3"},
            new PrintStream(new ByteArrayOutputStream()),
            new PrintStream(new ByteArrayOutputStream()));
    assertThat(code).isZero();
    try (ObjectStore store = ObjectStores.forUri("s3://models/tiny/", settings);
        Stream<Path> files = Files.list(model)) {
      for (Path f : files.toList()) {
        store.put(f.getFileName().toString(), f);
      }
    }
    Path train = Fixtures.completions(dir.resolve("train.jsonl"), 32, 1);
    try (ObjectStore store = ObjectStores.forUri("s3://data/completions/", settings)) {
      store.put("train.jsonl", train);
    }
  }

  @AfterAll
  static void stop() throws Exception {
    s3.close();
    S3ProxyServer.clearTestCredentials();
  }

  @Test
  void inputsAreDownloadedAndTheConfigNamesOnlyLocalFiles() throws Exception {
    TrainerConfig config = config("s3://runs/a/final/");
    Path work = dir.resolve("work-a");
    try (TrainingStaging staging = TrainingStaging.prepare(config, work, settings)) {
      TrainerConfig local = staging.localConfig();
      assertThat(local.baseModel.uri).startsWith("file:");
      assertThat(Path.of(URI.create(local.baseModel.uri)).resolve("model.safetensors")).exists();
      assertThat(Path.of(URI.create(local.dataset.train))).exists();
      assertThat(local.output.uri).startsWith("file:");
      // The caller's config is untouched.
      assertThat(config.baseModel.uri).isEqualTo("s3://models/tiny/");

      Path out = Path.of(URI.create(local.output.uri));
      Files.writeString(out.resolve("adapter_config.json"), "{}");
      Files.writeString(out.resolve("metrics.json"), "{}");
      staging.publishOutput();
    }
    assertThat(work).doesNotExist();
    try (ObjectStore store = ObjectStores.forUri("s3://runs/a/final/", settings)) {
      assertThat(store.list("", true))
          .extracting(ObjectInfo::key)
          .containsExactlyInAnyOrder("adapter_config.json", "metrics.json");
    }
  }

  @Test
  void aMissingInputIsBadInputNamingTheField() {
    TrainerConfig config = config("s3://runs/b/final/");
    config.dataset.train = "s3://data/completions/nope.jsonl";
    assertThatThrownBy(() -> TrainingStaging.prepare(config, dir.resolve("work-b"), settings))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("dataset.train s3://data/completions/nope.jsonl does not exist");
  }

  @Test
  void aMissingBucketIsBadInputNamingTheFieldAndIsNotRetried() {
    for (String field : List.of("baseModel.uri", "dataset.train")) {
      TrainerConfig config = config("s3://runs/c/final/");
      String uri =
          field.equals("baseModel.uri")
              ? (config.baseModel.uri = "s3://no-such-bucket/tiny/")
              : (config.dataset.train = "s3://no-such-bucket/train.jsonl");
      long start = System.nanoTime();
      assertThatThrownBy(() -> TrainingStaging.prepare(config, dir.resolve("work-c"), settings))
          .isInstanceOf(BadInputException.class)
          .hasMessageStartingWith(field + " " + uri + ": ")
          .hasMessageContaining("NoSuchBucket")
          .hasMessageContaining("the bucket does not exist");
      // The default policy backs off for seconds between attempts; a refusal makes none.
      assertThat((System.nanoTime() - start) / 1e9).isLessThan(2.0);
    }
  }

  @Test
  void theTrainerTrainsFromS3AndExportsToS3() throws Exception {
    TrainerConfig config = config("s3://runs/cli/final/");
    config.storage = new TrainerConfig.StorageSettings();
    config.storage.endpoint = s3.endpoint().toString();
    config.storage.pathStyle = true;
    Path configFile = dir.resolve("s3-config.json");
    JSON.writeValue(configFile.toFile(), config);
    Path termination = dir.resolve("termination.json");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        TrainerCli.run(
            new String[] {
              "train",
              "--config",
              configFile.toString(),
              "--termination-log",
              termination.toString()
            },
            new PrintStream(new ByteArrayOutputStream()),
            new PrintStream(err, true, StandardCharsets.UTF_8));

    assertThat(code).as(err.toString(StandardCharsets.UTF_8)).isEqualTo(TrainerExitCodes.SUCCESS);
    try (ObjectStore store = ObjectStores.forUri("s3://runs/cli/final/", settings)) {
      assertThat(store.list("", true))
          .extracting(ObjectInfo::key)
          .contains(
              "adapter_config.json",
              "adapter_model.safetensors",
              "metrics.json",
              "tokenizer.json",
              "tokenizer_config.json",
              "generation_config.json");
      // The adapter names the base as the user gave it, not the deleted staging copy.
      Path adapterConfig = dir.resolve("downloaded-adapter_config.json");
      store.get("adapter_config.json", adapterConfig);
      JsonNode adapter = JSON.readTree(adapterConfig.toFile());
      assertThat(adapter.path("base_model_name_or_path").asText()).isEqualTo("tiny");
      assertThat(adapter.at("/kubetune/base_model_uri").asText()).isEqualTo("s3://models/tiny/");
    }
    JsonNode report = JSON.readTree(termination.toFile());
    assertThat(report.path("message").asText()).contains("s3://runs/cli/final/");
    assertThat(report.path("digest").asText()).hasSize(64);
  }

  private static TrainerConfig config(String output) {
    TrainerConfig config = new TrainerConfig();
    config.baseModel = new BaseModelSpec();
    config.baseModel.uri = "s3://models/tiny/";
    config.dataset = new DatasetSpec();
    config.dataset.train = "s3://data/completions/train.jsonl";
    config.dataset.validationSplit = 0.25;
    config.dataset.format = DatasetSpec.Format.completion;
    config.method = new MethodSpec();
    config.method.type = MethodSpec.Type.LoRA;
    config.method.lora = new LoraSpec();
    config.method.lora.rank = 2;
    config.method.lora.alpha = 4.0;
    config.method.lora.targetModules = List.of("q_proj", "v_proj");
    config.hyperparameters = new HyperparametersSpec();
    config.hyperparameters.maxSteps = 4;
    config.hyperparameters.batchSize = 4;
    config.hyperparameters.evalEverySteps = 4;
    config.output = new TrainerConfig.Output();
    config.output.uri = output;
    return config;
  }
}
