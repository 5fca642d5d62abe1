package io.kubetune.trainer.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.safetensors.Safetensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The converter on a tiny hand-written Llama GGUF: what it writes and what it refuses. */
class GgufToHuggingFaceTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int HIDDEN = 8;
  private static final int HEADS = 2;
  private static final int KV_HEADS = 1;
  private static final int HEAD_DIM = HIDDEN / HEADS;
  private static final int FFN = 12;

  @TempDir Path dir;

  /** 256 byte symbols, the merges' results, then three control tokens. */
  private static List<String> tokens() {
    List<String> tokens = new ArrayList<>();
    for (char c : ByteLevelBpeTokenizerJson.byteToUnicode()) {
      tokens.add(String.valueOf(c));
    }
    tokens.addAll(List.of("Ġt", "he", "Ġthe"));
    tokens.addAll(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>"));
    return tokens;
  }

  static GgufBytes tinyLlama() {
    List<String> tokens = tokens();
    List<Integer> types = new ArrayList<>();
    for (int i = 0; i < tokens.size(); i++) {
      types.add(tokens.get(i).startsWith("<|") ? 3 : 1);
    }
    int vocab = tokens.size();
    GgufBytes gguf =
        new GgufBytes()
            .put("general.architecture", "llama")
            .put("general.name", "tiny")
            .put("llama.block_count", 1)
            .put("llama.context_length", 64)
            .put("llama.embedding_length", HIDDEN)
            .put("llama.feed_forward_length", FFN)
            .put("llama.attention.head_count", HEADS)
            .put("llama.attention.head_count_kv", KV_HEADS)
            .put("llama.rope.freq_base", 10000f)
            .put("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .put("llama.rope.dimension_count", HEAD_DIM)
            .put("llama.vocab_size", vocab)
            .put("tokenizer.ggml.model", "gpt2")
            .put("tokenizer.ggml.pre", "smollm")
            .put("tokenizer.ggml.tokens", tokens)
            .put("tokenizer.ggml.token_type", types)
            .put("tokenizer.ggml.merges", List.of("Ġ t", "h e", "Ġt he"))
            .put("tokenizer.ggml.bos_token_id", vocab - 2)
            .put("tokenizer.ggml.eos_token_id", vocab - 1)
            .put("tokenizer.ggml.padding_token_id", vocab - 3)
            .put("tokenizer.ggml.add_bos_token", true)
            .put("tokenizer.chat_template", "{{ messages[0]['content'] }}");
    Random random = new Random(7);
    gguf.f32("token_embd.weight", values(random, vocab * HIDDEN), HIDDEN, vocab);
    gguf.f32("blk.0.attn_norm.weight", values(random, HIDDEN), HIDDEN);
    gguf.f32("blk.0.attn_q.weight", rowIndices(HIDDEN, HIDDEN), HIDDEN, HIDDEN);
    gguf.f32("blk.0.attn_k.weight", rowIndices(KV_HEADS * HEAD_DIM, HIDDEN), HIDDEN, HEAD_DIM);
    gguf.f32("blk.0.attn_v.weight", values(random, HEAD_DIM * HIDDEN), HIDDEN, HEAD_DIM);
    gguf.f32("blk.0.attn_output.weight", values(random, HIDDEN * HIDDEN), HIDDEN, HIDDEN);
    gguf.f32("blk.0.ffn_norm.weight", values(random, HIDDEN), HIDDEN);
    gguf.f32("blk.0.ffn_gate.weight", values(random, FFN * HIDDEN), HIDDEN, FFN);
    gguf.f32("blk.0.ffn_up.weight", values(random, FFN * HIDDEN), HIDDEN, FFN);
    gguf.f32("blk.0.ffn_down.weight", values(random, FFN * HIDDEN), FFN, HIDDEN);
    gguf.f32("output_norm.weight", values(random, HIDDEN), HIDDEN);
    return gguf;
  }

  private static float[] values(Random random, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) random.nextGaussian();
    }
    return v;
  }

  /** Every value of row r is r, so a row permutation is visible. */
  private static float[] rowIndices(int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int r = 0; r < rows; r++) {
      Arrays.fill(v, r * cols, (r + 1) * cols, r);
    }
    return v;
  }

  @Test
  void writesAHuggingFaceFolder() throws Exception {
    Path gguf = tinyLlama().write(dir.resolve("tiny.gguf"));
    Path out = dir.resolve("hf");
    GgufToHuggingFace.Result result = GgufToHuggingFace.convert(gguf, out);
    assertThat(result.tensorTypes()).containsEntry("F32", 11);

    JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
    assertThat(config.get("model_type").asText()).isEqualTo("llama");
    assertThat(config.get("num_key_value_heads").asInt()).isEqualTo(KV_HEADS);
    assertThat(config.get("head_dim").asInt()).isEqualTo(HEAD_DIM);
    assertThat(config.get("rope_theta").asDouble()).isEqualTo(10000.0);
    assertThat(config.get("rms_norm_eps").asDouble()).isEqualTo(1e-5);
    assertThat(config.get("tie_word_embeddings").asBoolean()).isTrue();
    assertThat(config.get("max_position_embeddings").asInt()).isEqualTo(64);
    int vocab = tokens().size();
    assertThat(config.get("vocab_size").asInt()).isEqualTo(vocab);
    assertThat(config.get("bos_token_id").asInt()).isEqualTo(vocab - 2);
    assertThat(config.get("pad_token_id").asInt()).isEqualTo(vocab - 3);

    JsonNode tokenizerConfig = JSON.readTree(out.resolve("tokenizer_config.json").toFile());
    assertThat(tokenizerConfig.get("bos_token").asText()).isEqualTo("<|im_start|>");
    assertThat(tokenizerConfig.get("eos_token").asText()).isEqualTo("<|im_end|>");
    assertThat(tokenizerConfig.get("pad_token").asText()).isEqualTo("<|endoftext|>");
    assertThat(tokenizerConfig.get("add_bos_token").asBoolean()).isTrue();
    assertThat(tokenizerConfig.get("chat_template").asText())
        .isEqualTo("{{ messages[0]['content'] }}");

    // llama.cpp stores q/k rows pair-interleaved per head; transformers wants halves.
    try (Safetensors.Reader weights = Safetensors.open(out.resolve("model.safetensors"))) {
      float[] q = weights.readFloats("model.layers.0.self_attn.q_proj.weight");
      float[] firstColumn = new float[HIDDEN];
      for (int r = 0; r < HIDDEN; r++) {
        firstColumn[r] = q[r * HIDDEN];
      }
      assertThat(firstColumn).containsExactly(0, 2, 1, 3, 4, 6, 5, 7);
      float[] k = weights.readFloats("model.layers.0.self_attn.k_proj.weight");
      assertThat(new float[] {k[0], k[HIDDEN], k[2 * HIDDEN], k[3 * HIDDEN]})
          .containsExactly(0, 2, 1, 3);
      assertThat(weights.tensors()).doesNotContainKey("lm_head.weight");
    }

    // The tokenizer applies the merges, keeps control tokens whole and adds BOS when asked.
    try (TextTokenizer tokenizer = TextTokenizer.load(out)) {
      assertThat(tokenizer.encode("the<|im_end|>"))
          .containsExactly(tokens().indexOf("t"), tokens().indexOf("he"), vocab - 1);
      assertThat(tokenizer.encode(" the")).containsExactly(tokens().indexOf("Ġthe"));
      assertThat(tokenizer.decode(new long[] {tokens().indexOf("Ġthe"), 50})).isEqualTo(" the2");
    }
  }

  @Test
  void refusesMetadataItWouldDrop() throws Exception {
    Path gguf =
        tinyLlama().put("llama.rope.scaling.type", "linear").write(dir.resolve("scaled.gguf"));
    assertThatThrownBy(() -> GgufToHuggingFace.convert(gguf, dir.resolve("out")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining(gguf.toString())
        .hasMessageContaining("'llama.rope.scaling.type'");
  }

  @Test
  void refusesAPreTokenizerItDoesNotImplement() throws Exception {
    Path gguf =
        tinyLlama().put("tokenizer.ggml.pre", "llama-bpe").write(dir.resolve("llama3.gguf"));
    assertThatThrownBy(() -> GgufToHuggingFace.convert(gguf, dir.resolve("out")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("tokenizer.ggml.pre is 'llama-bpe'")
        .hasMessageContaining("smollm");
  }

  @Test
  void refusesTensorsOutsideAPlainLlama() throws Exception {
    Path gguf =
        tinyLlama()
            .f32("rope_freqs.weight", new float[HEAD_DIM / 2], HEAD_DIM / 2)
            .write(dir.resolve("freqs.gguf"));
    assertThatThrownBy(() -> GgufToHuggingFace.convert(gguf, dir.resolve("out")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("[rope_freqs.weight]");
  }

  @Test
  void refusesAnotherArchitecture() throws Exception {
    Path gguf = tinyLlama().put("general.architecture", "qwen2").write(dir.resolve("qwen.gguf"));
    assertThatThrownBy(() -> GgufToHuggingFace.convert(gguf, dir.resolve("out")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("general.architecture is 'qwen2'");
  }
}
