package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.BaseModelSpec;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.Testbed;
import io.kubetune.trainer.model.NativeKernels;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI end to end in-process: init a model, train from a TrainerConfig, generate, score. */
class TrainerCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static Path model;

  record Run(int code, String out, String err) {
    List<JsonNode> jsonLines() {
      return Arrays.stream(out.split("\n"))
          .filter(l -> l.startsWith("{"))
          .map(
              l -> {
                try {
                  return JSON.readTree(l);
                } catch (Exception e) {
                  throw new AssertionError(l, e);
                }
              })
          .toList();
    }
  }

  static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        TrainerCli.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @BeforeAll
  static void initTinyModel() {
    model = dir.resolve("tiny");
    Run init = run("init-tiny-model", "--output", model.toString(), "--seed", "5");
    assertThat(init.code()).as(init.err()).isZero();
    assertThat(model.resolve("tokenizer.json")).exists();
  }

  static TrainerConfig loraConfig(Path train, Path output) {
    TrainerConfig config = new TrainerConfig();
    config.baseModel = new BaseModelSpec();
    config.baseModel.uri = model.toUri().toString();
    config.dataset = new DatasetSpec();
    config.dataset.train = train.toUri().toString();
    config.dataset.validationSplit = 0.2;
    config.dataset.format = DatasetSpec.Format.completion;
    config.method = new MethodSpec();
    config.method.type = MethodSpec.Type.LoRA;
    config.method.lora = new LoraSpec();
    config.method.lora.rank = 4;
    config.method.lora.alpha = 8.0;
    config.method.lora.dropout = 0.0;
    config.method.lora.targetModules = List.of("q_proj", "k_proj", "v_proj", "o_proj", "up_proj");
    config.hyperparameters = new HyperparametersSpec();
    config.hyperparameters.maxSteps = 60;
    config.hyperparameters.learningRate = 2e-2;
    config.hyperparameters.batchSize = 8;
    config.hyperparameters.evalEverySteps = 30;
    config.output = new TrainerConfig.Output();
    config.output.uri = output.toUri().toString();
    return config;
  }

  @Test
  void trainsFromATrainerConfigThenGeneratesAndScoresWithTheAdapter() throws Exception {
    Path trainFile = Fixtures.completions(dir.resolve("train.jsonl"), 48, 1);
    Path output = dir.resolve("out");
    Path configFile = dir.resolve("trainer-config.json");
    JSON.writeValue(configFile.toFile(), loraConfig(trainFile, output));
    Path termination = dir.resolve("termination-log");

    Run train =
        run(
            "train",
            "--config",
            configFile.toString(),
            "--termination-log",
            termination.toString());

    assertThat(train.code()).as(train.err()).isZero();
    List<TrainerEvent> events = TrainerEvent.parseLog(train.out());
    assertThat(events.stream().filter(TrainerEvent.Progress.class::isInstance)).hasSize(60);
    TrainerEvent last = events.get(events.size() - 1);
    assertThat(last).isInstanceOf(TrainerEvent.Done.class);
    assertThat(((TrainerEvent.Done) last).steps()).isEqualTo(60);
    assertThat(output.resolve("adapter_model.safetensors")).exists();
    JsonNode terminationJson = JSON.readTree(termination.toFile());
    assertThat(terminationJson.get("reason").asText()).isEqualTo("Completed");
    assertThat(terminationJson.get("step").asInt()).isEqualTo(60);
    assertThat(terminationJson.get("format").asText()).isEqualTo("peft-lora");
    assertThat(terminationJson.get("digest").asText())
        .isEqualTo(
            io.kubetune.trainer.storage.FileDigest.sha256(
                output.resolve("adapter_model.safetensors")))
        .hasSize(64);
    assertThat(terminationJson.get("baseMetrics").get("eval_loss").asDouble())
        .isGreaterThan(terminationJson.get("tunedMetrics").get("eval_loss").asDouble());
    assertThat(Files.size(termination)).as("Kubernetes keeps 4096 bytes").isLessThan(4096);

    String prompt = "Where is the meeting? paris";
    String continuation = " In PARIS, as planned.</s>";
    Run base =
        run(
            "logprobs",
            "--model",
            model.toString(),
            "--prompt",
            prompt,
            "--continuation",
            continuation);
    Run tuned =
        run(
            "logprobs",
            "--model",
            model.toString(),
            "--adapter",
            output.toString(),
            "--prompt",
            prompt,
            "--continuation",
            continuation);
    assertThat(base.code()).as(base.err()).isZero();
    assertThat(tuned.code()).as(tuned.err()).isZero();
    double baseTotal = base.jsonLines().get(0).get("total").asDouble();
    double tunedTotal = tuned.jsonLines().get(0).get("total").asDouble();
    System.out.printf("log p(continuation): base %.2f, with adapter %.2f%n", baseTotal, tunedTotal);
    assertThat(tunedTotal).isGreaterThan(baseTotal + 3);

    Run greedy =
        run(
            "generate",
            "--model",
            model.toString(),
            "--adapter",
            output.toString(),
            "--prompt",
            prompt,
            "--max-new-tokens",
            "12");
    assertThat(greedy.code()).as(greedy.err()).isZero();
    JsonNode generated = greedy.jsonLines().get(0);
    assertThat(generated.get("tokens").size()).isBetween(1, 12);
    Run sampled =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt",
            prompt,
            "--max-new-tokens",
            "5",
            "--temperature",
            "0.8",
            "--top-p",
            "0.9",
            "--seed",
            "3");
    assertThat(sampled.code()).as(sampled.err()).isZero();
  }

  /** Llama 3 instruct ends a turn with another id than the first eos: any of the list stops. */
  @Test
  void generateStopsOnAnyIdOfAnEosTokenIdList() throws Exception {
    Path copy = dir.resolve("eos-list");
    Files.createDirectories(copy);
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
      Files.copy(model.resolve(f), copy.resolve(f));
    }
    String[] generate = {
      "generate", "--model", copy.toString(), "--prompt", "the cat", "--max-new-tokens", "8"
    };
    Run free = run(generate);
    assertThat(free.code()).as(free.err()).isZero();
    JsonNode tokens = free.jsonLines().get(0).get("tokens");
    assertThat(tokens.size()).as("greedy run without an early stop").isGreaterThanOrEqualTo(3);
    int firstEos = JSON.readTree(copy.resolve("config.json").toFile()).get("eos_token_id").asInt();
    // The third greedy token (at its first occurrence) becomes the second id of the list.
    long stopAt = tokens.get(2).asLong();
    int expectedLength = 1;
    while (tokens.get(expectedLength - 1).asLong() != stopAt) {
      expectedLength++;
    }
    assertThat(stopAt).isNotEqualTo(firstEos);
    ObjectNode config = (ObjectNode) JSON.readTree(copy.resolve("config.json").toFile());
    config.putArray("eos_token_id").add(firstEos).add(stopAt);
    JSON.writeValue(copy.resolve("config.json").toFile(), config);

    Run stopped = run(generate);
    assertThat(stopped.code()).as(stopped.err()).isZero();
    JsonNode cut = stopped.jsonLines().get(0).get("tokens");
    assertThat(cut.size()).isEqualTo(expectedLength);
    assertThat(cut.get(expectedLength - 1).asLong()).isEqualTo(stopAt);
  }

  @Test
  void malformedDatasetExitsWithBadInputAndOneLineNamingTheLine() throws Exception {
    Path train = dir.resolve("bad.jsonl");
    Files.writeString(train, "{\"prompt\": \"a\", \"completion\": \"b\"}\nnot json\n");
    Path configFile = dir.resolve("bad-config.json");
    JSON.writeValue(configFile.toFile(), loraConfig(train, dir.resolve("bad-out")));
    Path termination = dir.resolve("bad-termination");

    Run run =
        run(
            "train",
            "--config",
            configFile.toString(),
            "--termination-log",
            termination.toString());

    assertThat(run.code()).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(run.err().strip().lines()).hasSize(1);
    assertThat(run.err()).startsWith("error: ").contains("bad.jsonl:2: not valid JSON");
    assertThat(JSON.readTree(termination.toFile()).get("reason").asText()).isEqualTo("BadInput");
    assertThat(dir.resolve("bad-out")).doesNotExist();
  }

  @Test
  void divergingTrainingExitsWithLossNotFinite() throws Exception {
    Path train = Fixtures.completions(dir.resolve("nan.jsonl"), 16, 2);
    // A learning rate above the API's maximum (1e30 once forced divergence here) is refused as bad
    // input now that the trainer checks the bounds, and no in-range setting overflows reliably:
    // the final norm's weights are scaled to 1e38, so the logits overflow to infinity at the
    // first step.
    Path huge = dir.resolve("huge-norm");
    Files.createDirectories(huge);
    try (var files = Files.list(model)) {
      for (Path f : files.toList()) {
        Files.copy(f, huge.resolve(f.getFileName()));
      }
    }
    Path weights = huge.resolve("model.safetensors");
    Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
    try (Safetensors.Reader reader = Safetensors.open(weights)) {
      for (String name : reader.tensors().keySet()) {
        float[] data = reader.readFloats(name);
        if (name.equals("model.norm.weight")) {
          Arrays.fill(data, 1e38f);
        }
        tensors.put(name, new Safetensors.FloatTensor(reader.info(name).shape(), data));
      }
    }
    assertThat(tensors).containsKey("model.norm.weight");
    Safetensors.writeFloats(weights, tensors);
    TrainerConfig config = loraConfig(train, dir.resolve("nan-out"));
    config.baseModel.uri = huge.toUri().toString();
    config.method.type = MethodSpec.Type.Full;
    config.method.lora = null;
    config.hyperparameters.maxGradNorm = 0.0;
    config.hyperparameters.maxSteps = 40;
    Path configFile = dir.resolve("nan-config.json");
    JSON.writeValue(configFile.toFile(), config);
    Run run = run("train", "--config", configFile.toString(), "--termination-log", "");
    assertThat(run.code()).as(run.err()).isEqualTo(TrainerExitCodes.LOSS_NOT_FINITE);
    assertThat(run.err()).contains("training loss became");
  }

  @Test
  void benchmarkRunsOnATinyConfigAndReportsThroughputAndGemmShare() throws Exception {
    Path json = dir.resolve("benchmark.json");
    Run run =
        run(
            "benchmark",
            "--work-dir",
            dir.resolve("bench").toString(),
            "--output",
            json.toString(),
            "--hidden",
            "32",
            "--layers",
            "1",
            "--heads",
            "2",
            "--kv-heads",
            "1",
            "--intermediate",
            "64",
            "--batch-size",
            "2",
            "--sequence-length",
            "16",
            "--steps",
            "4",
            "--warmup-steps",
            "1",
            "--rounds",
            "2");
    assertThat(run.code()).as(run.err()).isZero();
    JsonNode result = JSON.readTree(json.toFile());
    assertThat(result.get("rounds")).hasSize(2);
    // Two rounds: each figure is the mean of the rounds' figures (the median of two).
    double first = result.get("rounds").get(0).get("lora").get("tokensPerSecond").asDouble();
    double second = result.get("rounds").get(1).get("lora").get("tokensPerSecond").asDouble();
    assertThat(result.get("lora").get("tokensPerSecond").asDouble())
        .isCloseTo((first + second) / 2, within(0.002));
    // Memory comes from the first round (later ones inherit the process's retained memory).
    assertThat(result.get("lora").get("peakRssMiB").asLong())
        .isEqualTo(result.get("rounds").get(0).get("lora").get("peakRssMiB").asLong());
    assertThat(result.get("gemmGflops").asDouble()).isPositive();
    assertThat(result.get("gemmGflopsBf16").asDouble()).isPositive();
    assertThat(result.get("gemmGflopsBf16Samples")).hasSize(3);
    JsonNode kernels = result.get("nativeKernels");
    assertThat(kernels.get("loaded").asBoolean()).isEqualTo(NativeKernels.status().loaded());
    assertThat(kernels.get("vectorized").asBoolean())
        .isEqualTo(NativeKernels.status().vectorized());
    assertThat(result.get("freeMemoryReleasedBeforeEachRun").asBoolean())
        .isEqualTo(NativeKernels.status().loaded());
    assertThat(result.get("lora").get("tokensPerSecond").asDouble()).isPositive();
    assertThat(result.get("full").get("shareOfGemmPeak").asDouble()).isPositive();
    assertThat(result.get("lora").get("trainableParameters").asLong())
        .isLessThan(result.get("full").get("trainableParameters").asLong());
  }

  @Test
  void benchmarkRunsTheSameConfigurationThroughTransformersAndPeftSideBySide() throws Exception {
    Path model = dir.resolve("peer-model");
    TinyLlama.write(model, new TinyLlama.Size(32, 1, 2, 1, 64), true, 3);
    Path json = dir.resolve("peer-benchmark.json");
    Run run =
        run(
            "benchmark",
            "--work-dir",
            dir.resolve("peer-bench").toString(),
            "--output",
            json.toString(),
            "--model",
            model.toString(),
            "--batch-size",
            "2",
            "--sequence-length",
            "16",
            "--steps",
            "3",
            "--warmup-steps",
            "1",
            "--peer-python",
            Testbed.python().toString(),
            "--peer-script",
            Testbed.script("peft_benchmark.py").toString(),
            "--peer-settings",
            "fp32,fp32-compiled",
            "--lora-dropout",
            "0");
    assertThat(run.code()).as(run.err()).isZero();
    JsonNode result = JSON.readTree(json.toFile());
    JsonNode peer = result.get("peer");
    // Both sides train with the dropout asked for.
    assertThat(result.get("loraDropout").asDouble()).isZero();
    assertThat(peer.get("lora").get("fp32").get("loraDropout").asDouble()).isZero();
    assertThat(peer.get("engine").asText()).startsWith("torch ");
    assertThat(peer.get("gemmGflops").asDouble()).isPositive();
    // Both engines' bf16 GEMM rates, side by side.
    assertThat(result.get("ratios").get("gemmBf16VsPeer").asDouble())
        .isCloseTo(
            result.get("gemmGflopsBf16").asDouble() / peer.get("gemmGflopsBf16").asDouble(),
            within(0.002));
    for (String method : List.of("lora", "full")) {
      JsonNode fp32 = peer.get(method).get("fp32");
      JsonNode compiled = peer.get(method).get("fp32-compiled");
      assertThat(fp32.get("tokensPerSecond").asDouble()).isPositive();
      assertThat(fp32.get("peakRssMiB").asLong()).isPositive();
      assertThat(fp32.get("compiled").asBoolean()).isFalse();
      // The same training under torch.compile: the same losses up to the fused kernels' rounding.
      assertThat(compiled.get("compiled").asBoolean()).isTrue();
      assertThat(compiled.get("precision").asText()).isEqualTo("fp32");
      assertThat(compiled.get("tokensPerSecond").asDouble()).isPositive();
      assertThat(compiled.get("losses").get(0).asDouble())
          .isCloseTo(fp32.get("losses").get(0).asDouble(), within(1e-3));
      // The ratio is taken against whichever setting was faster.
      String fastest = peer.get(method).get("fastest").asText();
      assertThat(fastest).isIn("fp32", "fp32-compiled");
      assertThat(peer.get(method).get(fastest).get("tokensPerSecond").asDouble())
          .isEqualTo(
              Math.max(
                  fp32.get("tokensPerSecond").asDouble(),
                  compiled.get("tokensPerSecond").asDouble()));
      assertThat(result.get(method).get("peakRssMiB").asLong()).isPositive();
      assertThat(result.get("ratios").get(method).get("tokensPerSecondVsPeerFastest").asDouble())
          .isPositive();
      // The same model and LoRA configuration: the same number of trainable parameters.
      assertThat(fp32.get("trainableParameters").asLong())
          .isEqualTo(result.get(method).get("trainableParameters").asLong());
    }
    assertThat(result.get("targets").get("loraSpeedupOverFull").has("met")).isTrue();
  }

  @Test
  void benchmarkRefusesALoraDropoutOutsideTheFineTuneJobsRange() {
    Run run = run("benchmark", "--lora-dropout", "1.5", "--work-dir", dir.toString());
    assertThat(run.code()).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(run.err()).contains("--lora-dropout is 1.5; use a value in [0, 0.9]");
  }

  @Test
  void benchmarkRefusesAnUnknownPeerSettingBeforeRunningAnything() {
    Path work = dir.resolve("refused-peer-setting");
    Run run = run("benchmark", "--peer-settings", "fp32,fp16", "--work-dir", work.toString());
    assertThat(run.code()).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(run.err())
        .contains(
            "--peer-settings: unknown setting 'fp16'; use fp32, bf16, fp32-compiled or"
                + " bf16-compiled");
    // Refused up front: no model was generated, no training ran.
    assertThat(work.resolve("model")).doesNotExist();
  }

  @Test
  void unknownOptionIsBadInput() {
    assertThat(run("train", "--no-such-flag").code()).isEqualTo(TrainerExitCodes.BAD_INPUT);
  }
}
