package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.safetensors.Safetensors;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Generation metrics in the trainer's evaluation (greedy answers to held-out prompts scored with
 * exact_match, bleu and rouge_l, for the base and the tuned model) and {@code
 * checkpoints.exportBest}.
 */
class GenerationEvaluationTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void tinyModel() throws Exception {
    model = dir.resolve("tiny");
    TinyLlama.write(model, new TinyLlama.Size(64, 2, 4, 2, 128), true, 3);
  }

  @Test
  void fullFineTuningRaisesTheGenerationMetricsOverTheBase() throws Exception {
    Path train = Fixtures.completions(dir.resolve("gen.jsonl"), 96, 6);
    Path output = dir.resolve("gen-out");
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, output)
            .withValidationSplit(0.2)
            .withMethod(TrainingMethod.FULL, 0, 0, List.of(), 1)
            .withSchedule(160, 1, 3e-3, 8, 1, 8)
            .withEvaluation(80, 0, "bleu", true)
            .withGeneration(8, 24)
            .withRegularisation(0.01, 1.0, 0.0, 7);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    FineTuner.Result result;
    try (FineTuner tuner =
        new FineTuner(
            options, new ProgressReporter(new PrintStream(out, true, StandardCharsets.UTF_8)))) {
      result = tuner.train();
      tuner.export(result);
    }
    Map<String, Double> base = result.initial().metrics();
    Map<String, Double> tuned = result.exported().metrics();
    System.out.printf(
        "generation metrics base -> tuned: exact_match %.3f -> %.3f, bleu %.2f -> %.2f,"
            + " rouge_l %.3f -> %.3f (eval_loss %.3f -> %.3f)%n",
        base.get("exact_match"),
        tuned.get("exact_match"),
        base.get("bleu"),
        tuned.get("bleu"),
        base.get("rouge_l"),
        tuned.get("rouge_l"),
        base.get("eval_loss"),
        tuned.get("eval_loss"));
    assertThat(base).containsKeys("eval_loss", "perplexity", "exact_match", "bleu", "rouge_l");
    assertThat(result.exported()).isEqualTo(result.last());
    assertThat(base.get("exact_match")).as("an untrained model answers nothing right").isZero();
    assertThat(tuned.get("bleu")).isGreaterThan(base.get("bleu") + 30);
    assertThat(tuned.get("rouge_l")).isGreaterThan(base.get("rouge_l") + 0.4);
    assertThat(tuned.get("exact_match")).isGreaterThanOrEqualTo(0.5);

    // The eval events carry them (the progress log, the operator's status).
    List<TrainerEvent.Eval> evals =
        TrainerEvent.parseLog(out.toString(StandardCharsets.UTF_8)).stream()
            .filter(TrainerEvent.Eval.class::isInstance)
            .map(TrainerEvent.Eval.class::cast)
            .toList();
    assertThat(evals).hasSize(3);
    assertThat(evals)
        .allSatisfy(e -> assertThat(e.metrics()).containsKeys("exact_match", "bleu", "rouge_l"));
    assertThat(evals.get(0).metrics().get("bleu")).isEqualTo(base.get("bleu"));

    JsonNode metrics = JSON.readTree(output.resolve("metrics.json").toFile());
    for (String section : List.of("initial", "final", "exported", "best")) {
      assertThat(metrics.get(section).has("bleu")).as(section).isTrue();
    }
    assertThat(metrics.get("exported").get("rouge_l").asDouble()).isEqualTo(tuned.get("rouge_l"));
    assertThat(output.resolve("summary.txt"))
        .content()
        .contains("exact_match:", "bleu:", "rouge_l:", "base -> tuned");
  }

  @Test
  void exportBestExportsTheBestCheckpointByTheMetricNotTheLastStep() throws Exception {
    Path train = Fixtures.completions(dir.resolve("best.jsonl"), 64, 5);
    Path output = dir.resolve("best-out");
    Path checkpoints = dir.resolve("best-ckpt");
    // eval_loss falls steadily here; ranked higher-is-better, the first checkpoint is the best, so
    // the test knows which checkpoint must be exported and that it is not the last one.
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, output)
            .withValidationSplit(0.2)
            .withMethod(TrainingMethod.LORA, 4, 8, List.of("q_proj", "v_proj", "up_proj"), 1)
            .withSchedule(60, 1, 2e-2, 8, 1, 5)
            .withEvaluation(20, 0, "eval_loss", true)
            .withRegularisation(0.01, 1.0, 0.0, 42)
            .toBuilder()
            .exportBest(true)
            .build();
    CheckpointOptions ckpt =
        new CheckpointOptions(
            checkpoints.toUri().toString(), 20, 1, "rev-best", StorageSettings.defaults());
    FineTuner.Result result;
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent(), ckpt)) {
      result = tuner.train();
      tuner.export(result);
    }
    assertThat(result.history())
        .extracting(FineTuner.Evaluation::step)
        .containsExactly(20L, 40L, 60L);
    assertThat(result.history().get(0).metrics().get("eval_loss"))
        .isGreaterThan(result.history().get(2).metrics().get("eval_loss"));
    assertThat(result.exported()).isEqualTo(result.history().get(0));
    assertThat(result.last().step()).isEqualTo(60);

    String b = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
    float[] exported = tensor(output.resolve("adapter_model.safetensors"), b);
    assertThat(exported).isEqualTo(tensor(trainableFile(checkpoints, 20), b));
    assertThat(exported).isNotEqualTo(tensor(trainableFile(checkpoints, 60), b));

    JsonNode metrics = JSON.readTree(output.resolve("metrics.json").toFile());
    assertThat(metrics.get("exported").get("step").asLong()).isEqualTo(20);
    assertThat(metrics.get("final").get("step").asLong()).isEqualTo(60);
    assertThat(output.resolve("summary.txt")).content().contains("step 20, the best checkpoint");
  }

  @Test
  void exportBestWithoutCheckpointsIsRefused() throws Exception {
    Path train = Fixtures.completions(dir.resolve("nockpt.jsonl"), 16, 5);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("nockpt-out"))
            .withValidationSplit(0.2)
            .toBuilder()
            .exportBest(true)
            .build();
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      assertThatThrownBy(tuner::train)
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("checkpoints.exportBest")
          .hasMessageContaining("checkpoints.uri");
    }
  }

  private static float[] tensor(Path file, String name) throws Exception {
    try (Safetensors.Reader reader = Safetensors.open(file)) {
      return reader.readFloats(name);
    }
  }

  /** The trainable.safetensors of the checkpoint of {@code step} (the one attempt folder in it). */
  private static Path trainableFile(Path checkpoints, long step) throws Exception {
    try (Stream<Path> files = Files.walk(checkpoints)) {
      return files
          .filter(p -> p.getFileName().toString().equals("trainable.safetensors"))
          .filter(p -> p.toString().contains(String.format("step-%09d", step)))
          .findFirst()
          .orElseThrow(
              () -> new AssertionError("no checkpoint of step " + step + " in " + checkpoints));
    }
  }
}
