package io.kubetune.trainer.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.Testbed;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.TextTokenizer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The converter against the Python reference stack, on a real pretrained model: SmolLM2-135M-
 * Instruct as GGUF Q4_1 (Testbed.smollm2Gguf()). Dequantization is bit-identical to the {@code
 * gguf} package; the converted folder loaded by the trainer gives transformers' logits for the
 * GGUF; the converted tokenizer gives transformers' ids and chat rendering.
 */
class GgufReferenceTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String SCRIPT = "gguf_reference.py";

  @TempDir static Path dir;
  static Path converted;

  @BeforeAll
  static void convert() throws Exception {
    converted = dir.resolve("smollm2");
    GgufToHuggingFace.convert(Testbed.smollm2Gguf(), converted);
  }

  @Test
  void typeTableMatchesTheGgufPackage() throws Exception {
    JsonNode reference = JSON.readTree(Testbed.run(SCRIPT, List.of("types"), 120).orThrow());
    for (GgmlType type : GgmlType.values()) {
      JsonNode entry = reference.get(type.name());
      assertThat(entry).as(type.name()).isNotNull();
      assertThat(List.of(entry.get(0).asInt(), entry.get(1).asInt(), entry.get(2).asInt()))
          .as(type.name())
          .containsExactly(type.id, type.blockSize, type.blockBytes);
    }
    assertThat(reference.size()).isEqualTo(GgmlType.values().length);
  }

  @Test
  void syntheticBlocksOfEverySupportedTypeDequantizeBitForBitAsGguf() throws Exception {
    Path file = dir.resolve("synthetic.gguf");
    JsonNode reference =
        JSON.readTree(Testbed.run(SCRIPT, List.of("synthetic", file.toString()), 120).orThrow());
    try (GgufFile gguf = GgufFile.open(file)) {
      List<String> seen = new ArrayList<>();
      for (GgmlType type : GgmlType.values()) {
        if (!type.dequantizable) {
          continue;
        }
        GgufFile.TensorInfo tensor = gguf.tensors().get("t." + type.name());
        assertThat(tensor.type()).isEqualTo(type);
        assertSameValues(gguf.dequantize(tensor), reference.get(tensor.name()));
        seen.add(type.name());
      }
      assertThat(seen).containsExactlyInAnyOrder("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1");
    }
  }

  @Test
  void realTensorsDequantizeBitForBitAsGguf() throws Exception {
    List<String> names =
        List.of(
            "token_embd.weight", // Q8_0, 28M values
            "blk.0.attn_q.weight", // Q4_1
            "blk.29.ffn_down.weight", // Q4_1
            "output_norm.weight"); // F32
    List<String> args = new ArrayList<>(List.of("dequantize", Testbed.smollm2Gguf().toString()));
    args.addAll(names);
    JsonNode reference = JSON.readTree(Testbed.run(SCRIPT, args, 300).orThrow());
    try (GgufFile gguf = GgufFile.open(Testbed.smollm2Gguf())) {
      for (String name : names) {
        GgufFile.TensorInfo tensor = gguf.tensors().get(name);
        assertThat(tensor.type().name()).isEqualTo(reference.get(name).get("type").asText());
        assertSameValues(gguf.dequantize(tensor), reference.get(name));
      }
    }
  }

  @Test
  void convertedModelGivesTransformersLogitsForTheGguf() throws Exception {
    // A chat turn in the model's own format: special tokens, words, digits and punctuation.
    long[] tokens = {1, 4093, 198, 19556, 28, 638, 1029, 339, 216, 33, 34, 35, 47, 2, 198, 1, 520};
    Path out = dir.resolve("logits.f32");
    String ids = LongStream.of(tokens).mapToObj(Long::toString).collect(Collectors.joining(","));
    String info =
        Testbed.run(
                SCRIPT,
                List.of("logits", Testbed.smollm2Gguf().toString(), ids, out.toString()),
                600)
            .orThrow();
    float[] reference = floats(Files.readAllBytes(out));

    float[] java;
    int vocab;
    try (NDManager manager = NDManager.newBaseManager()) {
      LlamaModel model = LlamaModel.load(converted, manager);
      vocab = model.config().vocabSize();
      try (NDManager step = manager.newSubManager()) {
        java =
            model
                .logits(
                    model.hiddenStates(LlamaModel.ids(step, new long[][] {tokens}), null, false))
                .toFloatArray();
      }
    }
    assertThat(java.length).as(info).isEqualTo(reference.length).isEqualTo(tokens.length * vocab);
    double maxDiff = 0;
    double spread = 0;
    for (int i = 0; i < java.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(java[i] - reference[i]));
      spread = Math.max(spread, Math.abs(reference[i]));
    }
    System.out.printf(
        "SmolLM2 converted vs transformers on the GGUF: max |Δ logit| %.3g over %d tokens%n",
        maxDiff, tokens.length);
    assertThat(spread).as("logits are not trivially flat").isGreaterThan(5);
    assertThat(maxDiff).as("max |Δ logit| against transformers (%s)", info).isLessThan(1e-4);
  }

  @Test
  void convertedTokenizerGivesTransformersIdsAndChatRendering() throws Exception {
    // ASCII text, digits, whitespace runs, non-Latin and emoji, special tokens inside text.
    List<String> texts =
        List.of(
            "Hello 123 world",
            "<|im_start|>user\nHi there!<|im_end|>\n",
            "  spaces\tand\nnewlines 3.14159, 2026-12-01",
            "Ünïcödé 🤖 emoji — ça va? 東京",
            "<|endoftext|><repo_name>x  ",
            "Sure thing! To reset your password, follow these three steps:\n1. Open the page.");
    // Number characters outside ASCII: llama.cpp's smollm pre-tokenizer (and SmolLM2's own
    // tokenizer.json) split them off, transformers' GGUF converter does not (see GgufTokenizer).
    String otherNumbers = "½ of ٣٤ is ²";
    List<String> all = new ArrayList<>(texts);
    all.add(otherNumbers);
    Path textsFile = dir.resolve("texts.json");
    JSON.writeValue(textsFile.toFile(), all);
    JsonNode reference =
        JSON.readTree(
            Testbed.run(
                    SCRIPT,
                    List.of(
                        "tokenize",
                        Testbed.smollm2Gguf().toString(),
                        converted.toString(),
                        textsFile.toString()),
                    300)
                .orThrow());

    try (TextTokenizer tokenizer = TextTokenizer.load(converted)) {
      for (int i = 0; i < all.size(); i++) {
        List<Long> java = LongStream.of(tokenizer.encode(all.get(i))).boxed().toList();
        assertThat(java)
            .as("SmolLM2 pre-tokenization of %s", all.get(i))
            .isEqualTo(longs(reference.get("smollm_pretokenizer").get("ids").get(i)));
        assertThat(java)
            .as("transformers loading the converted folder, %s", all.get(i))
            .isEqualTo(longs(reference.get("converted").get("ids").get(i)));
        if (i < texts.size()) {
          assertThat(java)
              .as("transformers loading the GGUF, %s", all.get(i))
              .isEqualTo(longs(reference.get("gguf").get("ids").get(i)));
        }
        assertThat(tokenizer.decode(tokenizer.encode(all.get(i)))).isEqualTo(all.get(i));
      }
    }
    JsonNode fromGguf = reference.get("gguf");
    JsonNode fromFolder = reference.get("converted");
    assertThat(fromFolder.get("special")).isEqualTo(fromGguf.get("special"));
    assertThat(fromFolder.get("chat").asText()).isEqualTo(fromGguf.get("chat").asText());
    assertThat(fromGguf.get("chat").asText()).startsWith("<|im_start|>system\n");
    assertThat(
            JSON.convertValue(
                JSON.readTree(converted.resolve("generation_config.json").toFile()), Map.class))
        .isEqualTo(Map.of("bos_token_id", 1, "eos_token_id", 2, "pad_token_id", 2));
  }

  private static List<Long> longs(JsonNode array) {
    List<Long> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asLong()));
    return out;
  }

  private static float[] floats(byte[] bytes) {
    float[] out = new float[bytes.length / 4];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  /** Same count and the same little-endian fp32 bytes (SHA-256) as the reference. */
  private static void assertSameValues(float[] values, JsonNode reference) throws Exception {
    assertThat(values.length).isEqualTo(reference.get("count").asInt());
    ByteBuffer bytes = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    String sha =
        HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes.array()));
    List<Float> first = new ArrayList<>();
    reference.get("first").forEach(n -> first.add((float) n.asDouble()));
    assertThat(List.of(values[0], values[1], values[2], values[3])).isEqualTo(first);
    assertThat(sha)
        .as("sha256 of the dequantized values")
        .isEqualTo(reference.get("sha256").asText());
  }
}
