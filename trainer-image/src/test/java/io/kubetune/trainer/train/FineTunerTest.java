package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FineTunerTest {

  static final int STEPS = 120;
  static final double LR = 2e-2;

  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void tinyModel() throws Exception {
    model = dir.resolve("tiny");
    TinyLlama.write(model, new TinyLlama.Size(64, 2, 4, 2, 128), true, 3);
  }

  @Test
  void loraClassificationRaisesHeldOutAccuracyWellAboveChance() throws Exception {
    Path train = Fixtures.tickets(dir.resolve("tickets-train.jsonl"), 160, 1);
    Path test = Fixtures.tickets(dir.resolve("tickets-test.jsonl"), 80, 2);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.CLASSIFICATION, dir.resolve("cls-out"))
            .withValidation(test)
            .withMethod(TrainingMethod.LORA, 8, 16, List.of("q_proj", "v_proj"), 1)
            .withSchedule(null, 6, 1e-2, 8, 1, 5)
            .withEvaluation(40, 0, "accuracy", true)
            .withRegularisation(0.01, 1.0, 0.05, 42);

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    FineTuner.Result result;
    try (FineTuner tuner =
        new FineTuner(
            options, new ProgressReporter(new PrintStream(out, true, StandardCharsets.UTF_8)))) {
      result = tuner.train();
      tuner.export(result);
    }

    double before = result.initial().metrics().get("accuracy");
    double after = result.last().metrics().get("accuracy");
    System.out.printf(
        "classification accuracy %.3f -> %.3f, f1 %.3f, %d steps, %.1f s%n",
        before, after, result.last().metrics().get("f1"), result.steps(), result.seconds());
    assertThat(after).as("held-out accuracy (chance is 0.25)").isGreaterThanOrEqualTo(0.8);
    assertThat(after).isGreaterThan(before + 0.3);
    assertThat(result.last().metrics()).containsKeys("f1", "precision", "recall", "perplexity");

    String[] lines = out.toString(StandardCharsets.UTF_8).split("\n");
    TrainerEvent loaded = TrainerEvent.parse(lines[0]).orElseThrow();
    assertThat(loaded).isInstanceOf(TrainerEvent.Loaded.class);
    assertThat(loaded)
        .extracting("modelType", "parameters", "tensors", "files", "bytes", "dtypes", "seconds")
        .doesNotContainNull();
    TrainerEvent first = TrainerEvent.parse(lines[2]).orElseThrow();
    assertThat(first).isInstanceOf(TrainerEvent.Progress.class);
    assertThat(first)
        .extracting("step", "epoch", "loss", "lr", "tokensPerSecond", "etaSeconds")
        .doesNotContainNull();

    Path outDir = dir.resolve("cls-out");
    JsonNode adapterConfig =
        new ObjectMapper().readTree(outDir.resolve("adapter_config.json").toFile());
    assertThat(adapterConfig.get("task_type").asText()).isEqualTo("SEQ_CLS");
    try (Safetensors.Reader reader =
        Safetensors.open(outDir.resolve("adapter_model.safetensors"))) {
      assertThat(reader.tensors()).containsKey("base_model.model.score.weight");
    }
    assertThat(outDir.resolve("labels.json")).content().contains("billing", "shipping");
  }

  @Test
  void loraCompletionLowersLossChangesOnlyTheAdapterAndWritesPeftFiles() throws Exception {
    Path train = Fixtures.completions(dir.resolve("completions.jsonl"), 64, 5);
    Path output = dir.resolve("lora-out");
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, output)
            .withValidationSplit(0.2)
            .withMethod(TrainingMethod.LORA, 4, 8, List.of("q_proj", "v_proj", "up_proj"), 1)
            .withSchedule(STEPS, 1, LR, 8, 2, 5)
            .withEvaluation(STEPS / 2, 0, "eval_loss", false)
            .withRegularisation(0.01, 1.0, 0.0, 42);

    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      Map<String, float[]> baseBefore = snapshot(tuner.model().weights());
      Map<String, float[]> adapterBefore = snapshot(tuner.trainable());
      FineTuner.Result result = tuner.train();
      tuner.export(result);

      double lossBefore = result.initial().metrics().get("eval_loss");
      double lossAfter = result.last().metrics().get("eval_loss");
      System.out.printf(
          "completion eval loss %.3f -> %.3f (train %.3f -> %.3f)%n",
          lossBefore,
          lossAfter,
          result.trainLoss().get(0)[1],
          result.trainLoss().get(STEPS - 1)[1]);
      // A random base has tiny logits (unit-RMS hidden state times a N(0, 0.02) head), which a
      // low-rank update of q/v/up cannot sharpen far; full training below shows the deep drop.
      assertThat(lossAfter).isLessThan(lossBefore * 0.85);

      assertThat(snapshot(tuner.model().weights()))
          .as("base weights frozen")
          .containsExactlyInAnyOrderEntriesOf(baseBefore);
      Map<String, float[]> adapterAfter = snapshot(tuner.trainable());
      assertThat(adapterAfter.keySet()).allMatch(n -> n.contains(".lora_"));
      assertThat(adapterAfter.get("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"))
          .isNotEqualTo(
              adapterBefore.get("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"));
    }

    JsonNode config = new ObjectMapper().readTree(output.resolve("adapter_config.json").toFile());
    assertThat(config.get("peft_type").asText()).isEqualTo("LORA");
    assertThat(config.get("r").asInt()).isEqualTo(4);
    assertThat(config.get("lora_alpha").asDouble()).isEqualTo(8.0);
    assertThat(config.get("task_type").asText()).isEqualTo("CAUSAL_LM");
    assertThat(config.get("target_modules").toString())
        .isEqualTo("[\"q_proj\",\"v_proj\",\"up_proj\"]");
    try (Safetensors.Reader reader =
        Safetensors.open(output.resolve("adapter_model.safetensors"))) {
      assertThat(reader.tensors()).hasSize(2 * 2 * 3);
      assertThat(
              reader.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape())
          .containsExactly(4, 64);
      assertThat(
              reader.info("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").shape())
          .containsExactly(64, 4);
      assertThat(reader.info("base_model.model.model.layers.0.mlp.up_proj.lora_B.weight").shape())
          .containsExactly(128, 4);
    }
    JsonNode metrics = new ObjectMapper().readTree(output.resolve("metrics.json").toFile());
    assertThat(metrics.get("history")).hasSize(2);
    assertThat(output.resolve("summary.txt")).content().contains("eval_loss:");
  }

  @Test
  void fullFineTuningWithAccumulationLearnsTheHouseStyle() throws Exception {
    Path train = Fixtures.completions(dir.resolve("full.jsonl"), 64, 6);
    Path output = dir.resolve("full-out");
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, output)
            .withValidationSplit(0.2)
            .withMethod(TrainingMethod.FULL, 0, 0, List.of(), 1)
            .withSchedule(80, 1, 3e-3, 8, 2, 8)
            .withEvaluation(40, 0, "eval_loss", false)
            .withRegularisation(0.01, 1.0, 0.0, 7);
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      FineTuner.Result result = tuner.train();
      tuner.export(result);
      double lossBefore = result.initial().metrics().get("eval_loss");
      double lossAfter = result.last().metrics().get("eval_loss");
      System.out.printf(
          "full fine-tuning eval loss %.3f -> %.3f (perplexity %.1f -> %.1f)%n",
          lossBefore,
          lossAfter,
          result.initial().metrics().get("perplexity"),
          result.last().metrics().get("perplexity"));
      assertThat(lossAfter).isLessThan(lossBefore * 0.5);
    }
    try (Safetensors.Reader reader = Safetensors.open(output.resolve("model.safetensors"))) {
      assertThat(reader.tensors().keySet())
          .contains("model.embed_tokens.weight", "model.norm.weight");
    }
  }

  @Test
  void fullClassificationExportsASequenceClassificationCheckpoint() throws Exception {
    Path train = Fixtures.tickets(dir.resolve("full-cls.jsonl"), 40, 12);
    Path output = dir.resolve("full-cls-out");
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.CLASSIFICATION, output)
            .withMethod(TrainingMethod.FULL, 0, 0, List.of(), 1)
            .withSchedule(3, 1, 1e-3, 8, 1, 0);
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      tuner.export(tuner.train());
    }
    JsonNode config = new ObjectMapper().readTree(output.resolve("config.json").toFile());
    assertThat(config.get("architectures").get(0).asText())
        .isEqualTo("LlamaForSequenceClassification");
    assertThat(config.get("num_labels").asInt()).isEqualTo(4);
    assertThat(config.get("id2label").get("0").asText()).isEqualTo("billing");
    try (Safetensors.Reader reader = Safetensors.open(output.resolve("model.safetensors"))) {
      assertThat(reader.info("score.weight").shape()).containsExactly(4, 64);
    }
  }

  @Test
  void chatFineTuningLowersTheLossOnAssistantTurns() throws Exception {
    Path train = dir.resolve("chat.jsonl");
    List<String> lines = new java.util.ArrayList<>();
    List<String> names = List.of("ada", "bob", "eve", "max");
    for (int i = 0; i < 32; i++) {
      String name = names.get(i % names.size());
      lines.add(
          "{\"messages\": [{\"role\": \"user\", \"content\": \"I am "
              + name
              + "\"}, {\"role\": \"assistant\", \"content\": \"Hello "
              + name
              + ", welcome back.\"}]}");
    }
    Files.write(train, lines);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.CHAT, dir.resolve("chat-out"))
            .withValidationSplit(0.25)
            .withMethod(TrainingMethod.FULL, 0, 0, List.of(), 1)
            .withSchedule(40, 1, 3e-3, 8, 1, 4)
            .withEvaluation(40, 0, "eval_loss", false);
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      FineTuner.Result result = tuner.train();
      assertThat(result.last().metrics().get("eval_loss"))
          .isLessThan(result.initial().metrics().get("eval_loss") * 0.5);
    }
  }

  @Test
  void freezeLayersTrainsOnlyTheTopLayerTheNormAndTheHead() throws Exception {
    Path train = Fixtures.completions(dir.resolve("freeze.jsonl"), 32, 9);
    Path output = dir.resolve("freeze-out");
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, output)
            .withMethod(TrainingMethod.FREEZE_LAYERS, 0, 0, List.of(), 1)
            .withSchedule(5, 1, 1e-3, 8, 1, 0);
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      Map<String, float[]> before = snapshot(tuner.model().weights());
      tuner.export(tuner.train());
      Map<String, float[]> after = snapshot(tuner.model().weights());
      assertThat(after.get("model.layers.0.mlp.up_proj.weight"))
          .isEqualTo(before.get("model.layers.0.mlp.up_proj.weight"));
      assertThat(after.get("model.layers.1.mlp.up_proj.weight"))
          .isNotEqualTo(before.get("model.layers.1.mlp.up_proj.weight"));
      assertThat(after.get("model.embed_tokens.weight"))
          .as("tied head trains")
          .isNotEqualTo(before.get("model.embed_tokens.weight"));
    }
    try (Safetensors.Reader reader = Safetensors.open(output.resolve("model.safetensors"))) {
      assertThat(reader.tensors()).containsKey("model.layers.1.self_attn.o_proj.weight");
      assertThat(reader.tensors()).doesNotContainKey("lm_head.weight");
    }
    assertThat(output.resolve("config.json")).exists();
    assertThat(output.resolve("tokenizer.json")).exists();
  }

  @Test
  void liveArraysAndNativeMemoryStayFlatOverThousandsOfSteps() throws Exception {
    Path train = Fixtures.completions(dir.resolve("leak.jsonl"), 16, 4);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("leak-out"))
            .withValidationSplit(0.25)
            .withMethod(TrainingMethod.FULL, 0, 0, List.of(), 1)
            .withEvaluation(100, 0, "eval_loss", false);
    int shortRun = liveArraysAfter(options.withSchedule(3, 1, 1e-4, 4, 1, 0));
    // Warm up the allocator, then compare resident memory before and after 1000 more steps.
    liveArraysAfter(options.withSchedule(100, 1, 1e-4, 4, 1, 0));
    long rssBefore = residentMiB();
    int longRun = liveArraysAfter(options.withSchedule(1000, 1, 1e-4, 4, 1, 0));
    long rssAfter = residentMiB();
    System.out.printf(
        "live arrays %d / %d, RSS %d -> %d MiB over 1000 steps%n",
        shortRun, longRun, rssBefore, rssAfter);
    assertThat(longRun).isEqualTo(shortRun);
    assertThat(rssAfter - rssBefore).as("resident memory growth, MiB").isLessThan(64);
  }

  private static int liveArraysAfter(TrainingOptions options) {
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      tuner.train();
      return tuner.liveArrays();
    }
  }

  /**
   * Resident memory after a garbage collection: DJL copies every array it creates from Java through
   * a direct buffer that only a collection frees (bin/trainer bounds them with
   * -XX:MaxDirectMemorySize), so only memory still held afterwards is a leak.
   */
  private static long residentMiB() throws Exception {
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(100);
    }
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
      }
    }
    return 0;
  }

  @Test
  void earlyStoppingEndsTheRunWhenTheMetricStopsImproving() throws Exception {
    Path train = Fixtures.completions(dir.resolve("early.jsonl"), 32, 8);
    // A learning rate of zero never improves eval_loss: patience 2 stops after the 2nd eval.
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("early-out"))
            .withValidationSplit(0.25)
            .withSchedule(100, 1, 0.0, 4, 1, 0)
            .withEvaluation(5, 2, "eval_loss", false);
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      FineTuner.Result result = tuner.train();
      assertThat(result.stoppedEarly()).isTrue();
      assertThat(result.steps()).isEqualTo(10);
      assertThat(result.history()).hasSize(2);
    }
  }

  @Test
  void malformedLineIsBadInputNamingFileAndLine() throws Exception {
    Path train = dir.resolve("broken.jsonl");
    Files.writeString(train, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\",\n");
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("x"));
    assertThatThrownBy(() -> new FineTuner(options, ProgressReporter.silent()))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("broken.jsonl:2: not valid JSON");
  }

  @Test
  void labelOutsideTheConfiguredSetIsBadInput() throws Exception {
    Path train = Fixtures.tickets(dir.resolve("labels.jsonl"), 10, 3);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.CLASSIFICATION, dir.resolve("x"))
            .withLabels(List.of("billing", "login"));
    assertThatThrownBy(() -> new FineTuner(options, ProgressReporter.silent()))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("labels.jsonl:")
        .hasMessageContaining("is not in the label set [billing, login]");
  }

  @Test
  void sequenceOverTheLimitIsBadInput() throws Exception {
    Path train = Fixtures.completions(dir.resolve("long.jsonl"), 4, 3);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("x"))
            .withMaxSequenceLength(8);
    assertThatThrownBy(() -> new FineTuner(options, ProgressReporter.silent()))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("long.jsonl:1: the record is")
        .hasMessageContaining("over maxSequenceLength 8");
  }

  @Test
  void divergingLossIsDetected() throws Exception {
    Path train = Fixtures.completions(dir.resolve("nan.jsonl"), 16, 3);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("nan-out"))
            .withMethod(TrainingMethod.FULL, 0, 0, List.of(), 1)
            .withSchedule(50, 1, 1e30, 8, 1, 0)
            .withRegularisation(0.0, 0.0, 0.0, 1);
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      assertThatThrownBy(tuner::train).isInstanceOf(LossNotFiniteException.class);
    }
  }

  static Map<String, float[]> snapshot(Map<String, NDArray> arrays) {
    Map<String, float[]> copy = new HashMap<>();
    arrays.forEach((n, a) -> copy.put(n, a.toFloatArray()));
    return copy;
  }
}
