package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.cli.TrainerCli;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading and verifying what a server serves, and serving the same numbers training measured. */
class ModelRepositoryTest {
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  static final Path TICKETS_TEST =
      ServeFixtures.EXAMPLES.resolve("data/support-tickets/test.jsonl");

  @TempDir static Path dir;
  static Path classifier;

  @BeforeAll
  static void trainClassifier() throws Exception {
    classifier =
        ServeFixtures.ticketClassifier(ServeFixtures.BASE, dir.resolve("cls"), 30, TICKETS_TEST);
  }

  @Test
  void servedClassifierReproducesTheAccuracyTrainingReported() throws Exception {
    ObjectMapper json = new ObjectMapper();
    double trained =
        json.readTree(classifier.resolve("metrics.json").toFile()).at("/final/accuracy").asDouble();
    List<String> texts = new ArrayList<>();
    List<String> labels = new ArrayList<>();
    for (String line : Files.readAllLines(TICKETS_TEST)) {
      JsonNode record = json.readTree(line);
      texts.add(record.get("text").asText());
      labels.add(record.get("label").asText());
    }
    try (ModelRepository repository = load(classifier, null)) {
      List<Inference.Classification> results =
          new Inference(repository.tokenizer()).classify(repository.get("cls"), texts);
      int right = 0;
      for (int i = 0; i < results.size(); i++) {
        right += results.get(i).label().equals(labels.get(i)) ? 1 : 0;
      }
      double served = (double) right / results.size();
      System.out.printf(
          "held-out accuracy: training reported %.4f, served %.4f%n", trained, served);
      assertThat(served).isCloseTo(trained, org.assertj.core.data.Offset.offset(0.011));
    }
  }

  @Test
  void aWrongDigestStopsTheLoadNamingBothDigests() {
    assertThatThrownBy(() -> load(classifier, "0".repeat(64)))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("adapter cls")
        .hasMessageContaining("0".repeat(64) + " was expected")
        .hasMessageContaining("Re-run the FineTuneJob or fix --adapter-digest");
  }

  @Test
  void anAdapterTrainedOnAnotherBaseIsRefusedWithTheShapes() throws Exception {
    Path otherBase = dir.resolve("other-base");
    TinyLlama.write(otherBase, new TinyLlama.Size(64, 2, 4, 2, 128), true, 5);
    Path foreign = ServeFixtures.ticketClassifier(otherBase, dir.resolve("foreign"), 2, null);
    assertThatThrownBy(() -> load(foreign, null))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("does not fit the base model")
        .hasMessageContaining(
            "has shape [8, 64] but this base model with the declared rank needs [8, 128]");
  }

  @Test
  void serveCommandExitsWithBadInputBeforeReportingReady() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        TrainerCli.run(
            new String[] {
              "serve",
              "--model",
              ServeFixtures.BASE.toString(),
              "--adapter",
              "cls=" + classifier,
              "--adapter-digest",
              "f".repeat(64),
              "--host",
              "127.0.0.1",
              "--port",
              "0"
            },
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(2);
    assertThat(out.toString(StandardCharsets.UTF_8))
        .contains("\"event\":\"listening\"")
        .doesNotContain("ready");
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("error: adapter cls")
        .contains("SHA-256");
  }

  @Test
  void adapterArgumentsAreCheckedBeforeAnythingLoads() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        TrainerCli.run(
            new String[] {"serve", "--model", ServeFixtures.BASE.toString(), "--adapter", "no-uri"},
            QUIET,
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("--adapter no-uri: expected NAME=URI");
  }

  static ModelRepository load(Path adapter, String digest) throws Exception {
    return ModelRepository.load(
        ServeFixtures.BASE.toString(),
        "kubetune-mini",
        List.of(new ModelRepository.AdapterSource("cls", adapter.toString(), digest)),
        StorageSettings.defaults(),
        dir.resolve("work"),
        QUIET);
  }
}
