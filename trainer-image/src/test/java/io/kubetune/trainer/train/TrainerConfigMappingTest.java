package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.HyperparametersSpec.Precision;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.data.DatasetFormat;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Reads the contract fixtures shared with the operator (operator/api test resources). */
class TrainerConfigMappingTest {
  private static final Path FIXTURES =
      Paths.get(System.getProperty("kubetune.trainer.moduleDir", "."))
          .resolve("../operator/api/src/test/resources/trainer-config");

  private static TrainingOptions map(String fixture) throws Exception {
    TrainerConfig config =
        new ObjectMapper().readValue(FIXTURES.resolve(fixture).toFile(), TrainerConfig.class);
    // Object storage is not wired yet (issue 4): map every URI to a fake local path.
    return TrainerConfigMapping.toOptions(
        config, uri -> Paths.get("/mnt", uri.replace("://", "/")));
  }

  @Test
  void loraCompletionFixture() throws Exception {
    TrainingOptions o = map("lora-completion.json");
    assertThat(o.method()).isEqualTo(TrainingMethod.LORA);
    assertThat(o.format()).isEqualTo(DatasetFormat.COMPLETION);
    assertThat(o.loraRank()).isEqualTo(8);
    assertThat(o.loraAlpha()).isEqualTo(16.0);
    assertThat(o.loraTargetModules()).containsExactly("q_proj", "k_proj", "v_proj", "o_proj");
    assertThat(o.gradientAccumulation()).isEqualTo(2);
    assertThat(o.warmupSteps()).isEqualTo(10);
    assertThat(o.earlyStoppingPatience()).isEqualTo(3);
    assertThat(o.metric()).isEqualTo("eval_loss");
    assertThat(o.metricHigherIsBetter()).isFalse();
    assertThat(o.validation())
        .isEqualTo(Paths.get("/mnt/s3/datasets/house-style/validation.jsonl"));
    assertThat(o.baseModelName()).isEqualTo("s3://models/llama-tiny/");
  }

  @Test
  void generationLimitsAndExportBestAreMapped() throws Exception {
    TrainingOptions o = map("lora-completion.json");
    assertThat(o.generationMaxExamples())
        .isEqualTo(io.kubetune.api.Bounds.GENERATION_MAX_EXAMPLES_DEFAULT);
    assertThat(o.generationMaxNewTokens())
        .isEqualTo(io.kubetune.api.Bounds.GENERATION_MAX_NEW_TOKENS_DEFAULT);
    assertThat(o.exportBest()).isFalse();
    assertThat(o.gradientCheckpointing()).isFalse();

    TrainerConfig config = read("lora-completion.json");
    config.hyperparameters.earlyStopping.metric = io.kubetune.api.v1alpha1.EvalMetric.BLEU;
    config.checkpoints.exportBest = true;
    config.hyperparameters.gradientCheckpointing = true;
    TrainingOptions bleu = TrainerConfigMapping.toOptions(config, uri -> Paths.get("/mnt", "x"));
    assertThat(bleu.metric()).isEqualTo("bleu");
    assertThat(bleu.metricHigherIsBetter()).isTrue();
    assertThat(bleu.exportBest()).isTrue();
    assertThat(bleu.gradientCheckpointing()).isTrue();

    // A generation metric without generation, or generation on classification data: refused.
    config.evaluation.generation.maxExamples = 0;
    assertThatThrownBy(() -> TrainerConfigMapping.toOptions(config, uri -> Paths.get("/mnt")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("evaluation.generation.maxExamples");
    TrainerConfig cls = read("support-tickets-classification.json");
    cls.evaluation.generation = new io.kubetune.api.v1alpha1.GenerationEvalSpec();
    cls.evaluation.generation.maxExamples = 4;
    assertThatThrownBy(() -> TrainerConfigMapping.toOptions(cls, uri -> Paths.get("/mnt")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("drop evaluation.generation");
  }

  @Test
  void precisionDefaultsToFp32AndBf16IsMapped() throws Exception {
    assertThat(map("lora-completion.json").precision()).isEqualTo(Precision.fp32);
    TrainerConfig config = read("lora-completion.json");
    config.hyperparameters.precision = Precision.bf16;
    assertThat(TrainerConfigMapping.toOptions(config, uri -> Paths.get("/mnt")).precision())
        .isEqualTo(Precision.bf16);
  }

  @Test
  void unknownPrecisionIsBadInputNamingTheFieldAndTheValues(@TempDir Path tmp) throws Exception {
    ObjectMapper json = new ObjectMapper();
    ObjectNode tree = (ObjectNode) json.readTree(FIXTURES.resolve("lora-completion.json").toFile());
    tree.with("hyperparameters").put("precision", "fp16");
    Path file = tmp.resolve("config.json");
    json.writeValue(file.toFile(), tree);

    assertThatThrownBy(() -> TrainerConfigMapping.read(file))
        .isInstanceOf(BadInputException.class)
        .hasMessage("trainer config hyperparameters.precision is 'fp16'; use one of fp32, bf16");
  }

  @Test
  void bf16WithFullFineTuningIsBadInputBeforeAnyDownload() throws Exception {
    TrainerConfig config = read("lora-completion.json");
    config.method.type = io.kubetune.api.v1alpha1.MethodSpec.Type.Full;
    config.method.lora = null;
    config.hyperparameters.precision = Precision.bf16;
    assertThatThrownBy(() -> TrainerConfigMapping.checkBounds(config))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("hyperparameters.precision bf16")
        .hasMessageContaining("method Full");
  }

  private static TrainerConfig read(String fixture) throws Exception {
    return new ObjectMapper().readValue(FIXTURES.resolve(fixture).toFile(), TrainerConfig.class);
  }

  @Test
  void freezeLayersFixture() throws Exception {
    TrainingOptions o = map("full-finetune-pvc.json");
    assertThat(o.method()).isEqualTo(TrainingMethod.FREEZE_LAYERS);
    assertThat(o.trainableLayers()).isEqualTo(2);
    assertThat(o.format()).isEqualTo(DatasetFormat.CHAT);
    assertThat(o.validationSplit()).isEqualTo(0.05);
    assertThat(o.epochs()).isEqualTo(2);
    assertThat(o.maxSteps()).isNull();
  }

  @Test
  void classificationFixture() throws Exception {
    TrainingOptions o = map("support-tickets-classification.json");
    assertThat(o.format()).isEqualTo(DatasetFormat.CLASSIFICATION);
    assertThat(o.labels()).isNotEmpty();
  }

  @Test
  void fileUrisBecomePathsAndOtherSchemesAreBadInput() {
    assertThat(TrainerConfigMapping.localPath("file:///data/train.jsonl"))
        .isEqualTo(Paths.get("/data/train.jsonl"));
    assertThat(TrainerConfigMapping.localPath("relative/train.jsonl"))
        .isEqualTo(Paths.get("relative/train.jsonl"));
    assertThatThrownBy(() -> TrainerConfigMapping.localPath("s3://b/k"))
        .isInstanceOf(BadInputException.class);
  }

  @Test
  void unknownApiVersionIsBadInput() {
    TrainerConfig config = new TrainerConfig();
    config.apiVersion = "kubetune.io/trainer-config/v9";
    assertThatThrownBy(() -> TrainerConfigMapping.toOptions(config))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("v9");
  }

  @Test
  void listsAreCopied() throws Exception {
    assertThat(map("lora-completion.json").loraTargetModules()).isInstanceOf(List.class);
  }

  @ParameterizedTest
  @CsvSource({
    "hyperparameters, gradientAccumulation, 0",
    "hyperparameters, maxSteps, -5",
    "hyperparameters, epochs, 0",
    "hyperparameters, learningRate, -0.001",
    "hyperparameters, batchSize, 0",
    "method.lora, rank, 0",
    "method.lora, alpha, -16",
    "method.lora, alpha, 0",
    "method.lora, dropout, 1.0",
    "checkpoints, keepLast, 0",
  })
  void nonsenseConfigurationIsBadInputNamingTheField(String parent, String field, String value)
      throws Exception {
    ObjectMapper json = new ObjectMapper();
    ObjectNode tree = (ObjectNode) json.readTree(FIXTURES.resolve("lora-completion.json").toFile());
    ObjectNode node = tree;
    for (String part : parent.split("\\.")) {
      node = node.with(part);
    }
    node.put(field, new java.math.BigDecimal(value));
    if (field.equals("maxSteps")) {
      ((ObjectNode) tree.path("hyperparameters")).remove("epochs");
    }
    TrainerConfig config = json.treeToValue(tree, TrainerConfig.class);

    assertThatThrownBy(() -> TrainerConfigMapping.toOptions(config, uri -> Paths.get("/mnt")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining(parent + "." + field + " is ")
        .hasMessageContaining("; use ");
  }

  @Test
  void badUrisAndCredentialsInTheEndpointAreBadInputNamingTheField() throws Exception {
    TrainerConfig nul =
        new ObjectMapper()
            .readValue(FIXTURES.resolve("lora-completion.json").toFile(), TrainerConfig.class);
    nul.dataset.train = "s3://datasets/a\u0000b.jsonl";
    assertThatThrownBy(() -> TrainerConfigMapping.checkBounds(nul))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("dataset.train")
        .hasMessageContaining("U+0000");

    TrainerConfig percent =
        new ObjectMapper()
            .readValue(FIXTURES.resolve("lora-completion.json").toFile(), TrainerConfig.class);
    percent.baseModel.uri = "s3://models/%zz/";
    assertThatThrownBy(() -> TrainerConfigMapping.checkBounds(percent))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("baseModel.uri")
        .hasMessageContaining("%25");

    TrainerConfig creds =
        new ObjectMapper()
            .readValue(FIXTURES.resolve("lora-completion.json").toFile(), TrainerConfig.class);
    creds.storage = new TrainerConfig.StorageSettings();
    creds.storage.endpoint = "http://AKIAPLANTED:s3cr3tPLANTED@minio:9000";
    assertThatThrownBy(() -> TrainerConfigMapping.checkBounds(creds))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("storage.endpoint")
        .hasMessageNotContaining("PLANTED");
  }
}
