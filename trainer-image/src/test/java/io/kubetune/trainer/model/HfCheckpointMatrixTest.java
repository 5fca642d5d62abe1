package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.ChildJvm;
import io.kubetune.trainer.Testbed;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random-weight checkpoints at the real shapes of Llama 3.2 1B, Qwen2.5 0.5B, Qwen3 0.6B and
 * Mistral 7B (few layers), written in bf16 shards by transformers 5 {@code save_pretrained}; the
 * Java model's logits must equal transformers' (fp32, eager attention) within 1e-4. Smaller models
 * cover what the big ones do not: a transformers-4-style config, sliding windows, attention biases
 * with a head_dim other than hidden/heads. All are generated once, in one Python process.
 */
class HfCheckpointMatrixTest {
  private static final double TOLERANCE = 1e-4;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Random ids below every vocabulary here, 12 long: longer than the sliding windows below. */
  private static final long[] IDS = {1, 29871, 4093, 13, 31999, 7, 2048, 512, 30000, 17, 9, 25000};

  private static final long[] SMALL_IDS = {1, 87, 200, 13, 5, 290, 44, 44, 9, 120, 3, 499};

  @TempDir static Path root;
  private static JsonNode generated;

  @BeforeAll
  static void generateCheckpoints() throws IOException {
    Map<String, Object> specs = new LinkedHashMap<>();
    specs.put(
        "llama3.2-1b",
        spec(
            "llama",
            IDS,
            Map.ofEntries(
                Map.entry("hidden_size", 2048),
                Map.entry("num_attention_heads", 32),
                Map.entry("num_key_value_heads", 8),
                Map.entry("head_dim", 64),
                Map.entry("intermediate_size", 8192),
                Map.entry("vocab_size", 128256),
                Map.entry("num_hidden_layers", 2),
                Map.entry("tie_word_embeddings", true),
                Map.entry("max_position_embeddings", 131072),
                Map.entry("rms_norm_eps", 1e-5),
                Map.entry("bos_token_id", 128000),
                Map.entry("eos_token_id", List.of(128001, 128008, 128009)),
                Map.entry("rope_parameters", llama3Rope(500000.0, 32.0, 8192)))));
    specs.put(
        "qwen2.5-0.5b",
        spec(
            "qwen2",
            IDS,
            Map.ofEntries(
                Map.entry("hidden_size", 896),
                Map.entry("num_attention_heads", 14),
                Map.entry("num_key_value_heads", 2),
                Map.entry("intermediate_size", 4864),
                Map.entry("vocab_size", 151936),
                Map.entry("num_hidden_layers", 2),
                Map.entry("tie_word_embeddings", true),
                Map.entry("max_position_embeddings", 32768),
                Map.entry("use_sliding_window", false),
                Map.entry("sliding_window", 32768),
                Map.entry("bos_token_id", 151643),
                Map.entry("eos_token_id", 151643),
                Map.entry("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e6)))));
    specs.put(
        "qwen3-0.6b",
        spec(
            "qwen3",
            IDS,
            Map.ofEntries(
                Map.entry("hidden_size", 1024),
                Map.entry("num_attention_heads", 16),
                Map.entry("num_key_value_heads", 8),
                Map.entry("head_dim", 128),
                Map.entry("intermediate_size", 3072),
                Map.entry("vocab_size", 151936),
                Map.entry("num_hidden_layers", 2),
                Map.entry("tie_word_embeddings", true),
                Map.entry("max_position_embeddings", 40960),
                Map.entry("bos_token_id", 151643),
                Map.entry("eos_token_id", 151645),
                Map.entry("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e6)))));
    specs.put(
        "mistral-7b",
        spec(
            "mistral",
            IDS,
            Map.ofEntries(
                Map.entry("hidden_size", 4096),
                Map.entry("num_attention_heads", 32),
                Map.entry("num_key_value_heads", 8),
                Map.entry("intermediate_size", 14336),
                Map.entry("vocab_size", 32000),
                Map.entry("num_hidden_layers", 1),
                Map.entry("tie_word_embeddings", false),
                Map.entry("max_position_embeddings", 32768),
                Map.entry("sliding_window", 4096),
                Map.entry("rms_norm_eps", 1e-5),
                Map.entry("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e4)))));
    Map<String, Object> llamaT4 =
        spec(
            "llama",
            SMALL_IDS,
            Map.of(
                "hidden_size", 256,
                "num_attention_heads", 8,
                "num_key_value_heads", 2,
                "intermediate_size", 512,
                "vocab_size", 500,
                "num_hidden_layers", 2,
                "max_position_embeddings", 1024,
                // A short original context puts the head's frequencies in all three llama3 bands.
                "rope_parameters", llama3Rope(500000.0, 8.0, 64)));
    llamaT4.put("config_style", "transformers4");
    specs.put("llama-transformers4", llamaT4);
    specs.put(
        "mistral-window",
        spec(
            "mistral",
            SMALL_IDS,
            small(Map.of("sliding_window", 4, "rope_parameters", defaultRope(1e4)))));
    specs.put(
        "qwen2-window",
        spec(
            "qwen2",
            SMALL_IDS,
            small(
                Map.of(
                    "use_sliding_window",
                    true,
                    "sliding_window",
                    4,
                    "max_window_layers",
                    1,
                    "rope_parameters",
                    defaultRope(1e6)))));
    specs.put(
        "qwen3-bias",
        spec(
            "qwen3",
            SMALL_IDS,
            small(
                Map.of(
                    "attention_bias", true, "head_dim", 48, "rope_parameters", defaultRope(1e6)))));
    for (String lmHead : List.of("equal", "different")) {
      Map<String, Object> tied =
          spec("llama", SMALL_IDS, small(Map.of("tie_word_embeddings", true)));
      tied.put("lm_head_in_file", lmHead);
      specs.put("tied-head-" + lmHead, tied);
    }
    String out =
        Testbed.run(
                "hf_checkpoints.py",
                List.of("make", JSON.writeValueAsString(specs), root.toString()),
                900)
            .orThrow();
    generated = JSON.readTree(out);
  }

  @Test
  void llama32OneBillionShapeWithLlama3RopeScalingAndAnEosList() throws Exception {
    LlamaConfig config = assertLogitsMatch("llama3.2-1b", IDS);
    assertThat(config.ropeScaling().type()).isEqualTo("llama3");
    assertThat(config.ropeTheta()).isEqualTo(500000.0);
    assertThat(config.eosTokenIds()).containsExactly(128001, 128008, 128009);
    assertThat(config.headDim()).isEqualTo(64);
  }

  @Test
  void qwen25HalfBillionShapeWithQkvBiases() throws Exception {
    LlamaConfig config = assertLogitsMatch("qwen2.5-0.5b", IDS);
    assertThat(config.qkvBias()).isTrue();
    assertThat(config.slidingWindow()).isNull();
    assertThat(config.ropeTheta()).isEqualTo(1e6);
  }

  @Test
  void qwen3ShapeWithPerHeadQkNormsAndAWiderHeadDim() throws Exception {
    LlamaConfig config = assertLogitsMatch("qwen3-0.6b", IDS);
    assertThat(config.qkNorm()).isTrue();
    assertThat(config.headDim() * config.numAttentionHeads()).isEqualTo(2048);
  }

  @Test
  void mistral7bShapeWithOneLayerAndAnUntiedHead() throws Exception {
    LlamaConfig config = assertLogitsMatch("mistral-7b", IDS);
    assertThat(config.tieWordEmbeddings()).isFalse();
    assertThat(config.slidingWindow()).isEqualTo(4096);
  }

  @Test
  void transformers4StyleConfigWithTopLevelRopeThetaRopeScalingAndTorchDtype() throws Exception {
    JsonNode file = JSON.readTree(root.resolve("llama-transformers4/config.json").toFile());
    assertThat(file.has("rope_parameters")).isFalse();
    assertThat(file.path("rope_scaling").path("rope_type").asText()).isEqualTo("llama3");
    assertThat(file.path("torch_dtype").asText()).isEqualTo("bfloat16");
    LlamaConfig config = assertLogitsMatch("llama-transformers4", SMALL_IDS);
    assertThat(config.ropeTheta()).isEqualTo(500000.0);
    assertThat(config.ropeScaling().originalMaxPositionEmbeddings()).isEqualTo(64);
  }

  @Test
  void mistralSlidingWindowShorterThanTheSequence() throws Exception {
    LlamaConfig config = assertLogitsMatch("mistral-window", SMALL_IDS);
    assertThat(config.slidingWindow()).isEqualTo(4);
    // The window matters here: without it the same weights give other logits.
    Path full = withConfig("mistral-window", c -> c.putNull("sliding_window"));
    assertThat(maxAbsDiff(javaLogits(full, SMALL_IDS), reference("mistral-window")))
        .isGreaterThan(1e-3);
  }

  @Test
  void qwen2SlidingWindowOnTheLayersFromMaxWindowLayers() throws Exception {
    LlamaConfig config = assertLogitsMatch("qwen2-window", SMALL_IDS);
    assertThat(config.slidingWindowAt(0)).isFalse();
    assertThat(config.slidingWindowAt(1)).isTrue();
    Path full =
        withConfig("qwen2-window", c -> c.put("use_sliding_window", false).remove("layer_types"));
    assertThat(maxAbsDiff(javaLogits(full, SMALL_IDS), reference("qwen2-window")))
        .isGreaterThan(1e-3);
  }

  @Test
  void qwen3AttentionBiasesOnAllFourProjections() throws Exception {
    LlamaConfig config = assertLogitsMatch("qwen3-bias", SMALL_IDS);
    assertThat(config.attentionBias()).isTrue();
    assertThat(config.headDim()).isEqualTo(48);
  }

  @Test
  void tiedModelWhoseFileAlsoHoldsAnEqualLmHeadLoadsAsTransformersTiesIt() throws Exception {
    assertThat(LlamaConfig.read(root.resolve("tied-head-equal/config.json")).tieWordEmbeddings())
        .isTrue();
    assertLogitsMatch("tied-head-equal", SMALL_IDS);
  }

  @Test
  void tiedModelWhoseFileHoldsADifferentLmHeadIsRefusedNamingTheField() {
    // transformers unties such a model with a warning; the trainer refuses to guess.
    assertThatThrownBy(() -> javaLogits(root.resolve("tied-head-different"), SMALL_IDS))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("tie_word_embeddings")
        .hasMessageContaining("lm_head.weight");
  }

  /**
   * The launcher bounds direct memory to 512 MiB; Qwen2.5's embedding is 544,538,624 bytes in fp32.
   * A child JVM with the launcher's own flag (read from bin/trainer) and a heap smaller than that
   * tensor loads it and computes the same logits.
   */
  @Test
  void loadsATensorLargerThanTheLaunchersDirectMemoryInAChildJvm() throws Exception {
    Path model = root.resolve("qwen2.5-0.5b");
    String launcher =
        Files.readString(
            Path.of(System.getProperty("kubetune.trainer.moduleDir", ".")).resolve("bin/trainer"));
    Matcher flag = Pattern.compile("-XX:MaxDirectMemorySize=(\\d+)m").matcher(launcher);
    assertThat(flag.find()).as("bin/trainer sets -XX:MaxDirectMemorySize").isTrue();
    long embeddingBytes = 151936L * 896 * 4;
    assertThat(embeddingBytes).isGreaterThan(Long.parseLong(flag.group(1)) << 20);

    Path out = root.resolve("child-logits.f32");
    List<String> command =
        ChildJvm.command(
            List.of(flag.group(), "-Xmx256m"),
            LogitsProbe.class,
            List.of(
                model.toString(),
                Arrays.stream(IDS).mapToObj(Long::toString).collect(Collectors.joining(",")),
                out.toString()));
    Path log = root.resolve("child.log");
    Process child =
        new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertThat(child.waitFor(300, TimeUnit.SECONDS)).isTrue();
    String output = Files.readString(log, StandardCharsets.UTF_8);
    assertThat(child.exitValue()).as(output).isZero();
    JsonNode report =
        JSON.readTree(
            output.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
    assertThat(report.path("dtypes").toString()).isEqualTo("[\"BF16\"]");
    assertThat(report.path("files").asInt()).isGreaterThan(1);
    assertThat(maxAbsDiff(LogitsProbe.read(out), reference("qwen2.5-0.5b"))).isLessThan(TOLERANCE);
  }

  private static LlamaConfig assertLogitsMatch(String name, long[] ids) throws IOException {
    Path model = root.resolve(name);
    float[] reference = reference(name);
    float[] java;
    LlamaConfig config;
    try (NDManager manager = NDManager.newBaseManager();
        LlamaModel loaded = LlamaModel.load(model, manager)) {
      config = loaded.config();
      java = LogitsProbe.logits(loaded, ids);
      LlamaModel.LoadReport report = loaded.loadReport();
      assertThat(report.dtypes()).containsExactly("BF16");
      assertThat(report.parameters()).isEqualTo(config.parameterCount());
      assertThat(report.files()).isEqualTo(generated.path(name).path("files").size());
    }
    assertThat(java).hasSameSizeAs(reference);
    double spread = 0;
    for (float v : reference) {
      spread = Math.max(spread, Math.abs(v));
    }
    assertThat(spread).as("logits are not trivially flat").isGreaterThan(0.1);
    assertThat(maxAbsDiff(java, reference)).as(name).isLessThan(TOLERANCE);
    return config;
  }

  private static float[] javaLogits(Path model, long[] ids) {
    try (NDManager manager = NDManager.newBaseManager();
        LlamaModel loaded = LlamaModel.load(model, manager)) {
      return LogitsProbe.logits(loaded, ids);
    }
  }

  private static float[] reference(String name) throws IOException {
    return LogitsProbe.read(root.resolve(name).resolve("reference-logits.f32"));
  }

  /** A copy of a generated model with its config.json changed. */
  private static Path withConfig(String name, Consumer<ObjectNode> change) throws IOException {
    Path source = root.resolve(name);
    Path copy = root.resolve(name + "-changed");
    Files.createDirectories(copy);
    try (Stream<Path> files = Files.list(source)) {
      for (Path f : files.toList()) {
        Files.copy(f, copy.resolve(f.getFileName()));
      }
    }
    ObjectNode config = (ObjectNode) JSON.readTree(copy.resolve("config.json").toFile());
    change.accept(config);
    JSON.writeValue(copy.resolve("config.json").toFile(), config);
    return copy;
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  private static Map<String, Object> spec(
      String modelType, long[] ids, Map<String, Object> config) {
    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("model_type", modelType);
    spec.put("seed", 7);
    spec.put("max_shard_size", "300MB");
    spec.put("ids", ids);
    spec.put("config", config);
    return spec;
  }

  /** A small model's shape around the given fields: quick to generate, 2 layers. */
  private static Map<String, Object> small(Map<String, Object> fields) {
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("hidden_size", 128);
    config.put("num_attention_heads", 4);
    config.put("num_key_value_heads", 2);
    config.put("intermediate_size", 256);
    config.put("vocab_size", 500);
    config.put("num_hidden_layers", 2);
    config.put("max_position_embeddings", 1024);
    config.putAll(fields);
    return config;
  }

  private static Map<String, Object> defaultRope(double theta) {
    return Map.of("rope_type", "default", "rope_theta", theta);
  }

  private static Map<String, Object> llama3Rope(double theta, double factor, int originalMax) {
    return Map.of(
        "rope_type",
        "llama3",
        "rope_theta",
        theta,
        "factor",
        factor,
        "low_freq_factor",
        1.0,
        "high_freq_factor",
        4.0,
        "original_max_position_embeddings",
        originalMax);
  }
}
