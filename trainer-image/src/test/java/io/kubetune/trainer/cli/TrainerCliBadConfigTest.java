package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Nonsense configuration is refused before anything is loaded or downloaded: exit 2, termination
 * reason BadInput, one line naming the field. Before, gradientAccumulation 0 trained nothing (loss
 * 0.0) and exited 0.
 */
class TrainerCliBadConfigTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void gradientAccumulationZeroIsBadInput() throws Exception {
    assertRefused(c -> c.hyperparameters.gradientAccumulation = 0, "gradientAccumulation is 0");
  }

  @Test
  void dropoutOneIsBadInput() throws Exception {
    assertRefused(c -> c.method.lora.dropout = 1.0, "method.lora.dropout is 1.0");
  }

  @Test
  void aNulInTheDatasetUriIsBadInputNotACrash() throws Exception {
    assertRefused(c -> c.dataset.train = "s3://data/a\u0000.jsonl", "dataset.train");
  }

  private void assertRefused(Consumer<TrainerConfig> breakIt, String named) throws Exception {
    TrainerConfig config = new TrainerConfig();
    config.baseModel = new io.kubetune.api.v1alpha1.BaseModelSpec();
    config.baseModel.uri = dir.resolve("no-model").toUri().toString();
    config.dataset = new DatasetSpec();
    config.dataset.train = dir.resolve("train.jsonl").toUri().toString();
    config.dataset.format = DatasetSpec.Format.completion;
    config.method = new MethodSpec();
    config.method.type = MethodSpec.Type.LoRA;
    config.method.lora = new LoraSpec();
    config.hyperparameters = new HyperparametersSpec();
    config.output = new TrainerConfig.Output();
    config.output.uri = dir.resolve("out").toUri().toString();
    breakIt.accept(config);
    Path file = dir.resolve("config.json");
    JSON.writeValue(file.toFile(), config);
    Path termination = dir.resolve("termination");

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        TrainerCli.run(
            new String[] {
              "train", "--config", file.toString(), "--termination-log", termination.toString()
            },
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));

    String stderr = err.toString(StandardCharsets.UTF_8);
    assertThat(code).as(stderr).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(stderr.strip().lines()).hasSize(1);
    assertThat(stderr).startsWith("error: trainer config").contains(named);
    assertThat(JSON.readTree(termination.toFile()).get("reason").asText()).isEqualTo("BadInput");
    assertThat(dir.resolve("out")).doesNotExist();
  }
}
