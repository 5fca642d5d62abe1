package io.kubetune.trainer.gguf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Converts a GGUF file of a Llama-architecture model into a Hugging Face model folder: {@code
 * config.json}, {@code model.safetensors} (fp32, dequantized), {@code tokenizer.json}, {@code
 * tokenizer_config.json} and {@code generation_config.json}. The result is what transformers builds
 * when it loads the same file with {@code from_pretrained(dir, gguf_file=...)}.
 *
 * <p>Every metadata key of the architecture and the tokenizer must be one this class reads, and
 * every tensor one it maps: a file that says something the conversion would drop (rope scaling,
 * experts, extra tensors) is refused with the key or tensor named, never converted approximately.
 */
public final class GgufToHuggingFace {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The {@code general.architecture} values this converter handles. */
  public static final Set<String> ARCHITECTURES = Set.of("llama");

  /** The {@code llama.*} keys that are read (everything else under the prefix is refused). */
  private static final Set<String> LLAMA_KEYS =
      Set.of(
          "context_length",
          "embedding_length",
          "block_count",
          "feed_forward_length",
          "attention.head_count",
          "attention.head_count_kv",
          "attention.layer_norm_rms_epsilon",
          "attention.key_length",
          "attention.value_length",
          "rope.freq_base",
          "rope.dimension_count",
          "vocab_size");

  /**
   * The {@code tokenizer.*} keys that are read. {@code tokenizer.ggml.scores} is present in some
   * BPE files but has no meaning for BPE (merges decide), so it is accepted and not used.
   */
  private static final Set<String> TOKENIZER_KEYS =
      Set.of(
          "tokenizer.ggml.model",
          "tokenizer.ggml.pre",
          "tokenizer.ggml.tokens",
          "tokenizer.ggml.token_type",
          "tokenizer.ggml.merges",
          "tokenizer.ggml.scores",
          "tokenizer.ggml.bos_token_id",
          "tokenizer.ggml.eos_token_id",
          "tokenizer.ggml.eot_token_id",
          "tokenizer.ggml.eom_token_id",
          "tokenizer.ggml.unknown_token_id",
          "tokenizer.ggml.padding_token_id",
          "tokenizer.ggml.add_bos_token",
          "tokenizer.ggml.add_eos_token",
          "tokenizer.ggml.add_space_prefix",
          "tokenizer.chat_template");

  /** llama.cpp's tensor names (per layer, after {@code blk.N.}) and the transformers names. */
  private static final Map<String, String> LAYER_TENSORS =
      Map.of(
          "attn_norm.weight", "input_layernorm.weight",
          "attn_q.weight", "self_attn.q_proj.weight",
          "attn_k.weight", "self_attn.k_proj.weight",
          "attn_v.weight", "self_attn.v_proj.weight",
          "attn_output.weight", "self_attn.o_proj.weight",
          "ffn_norm.weight", "post_attention_layernorm.weight",
          "ffn_gate.weight", "mlp.gate_proj.weight",
          "ffn_up.weight", "mlp.up_proj.weight",
          "ffn_down.weight", "mlp.down_proj.weight");

  /** The Llama hyperparameters the file states. */
  record Hyperparameters(
      int vocabSize,
      int hiddenSize,
      int intermediateSize,
      int layers,
      int heads,
      int kvHeads,
      int headDim,
      int contextLength,
      double rmsNormEps,
      double ropeTheta,
      boolean tiedEmbeddings) {}

  /** What a conversion wrote. */
  public record Result(
      Path output,
      String name,
      long parameters,
      Map<String, Integer> tensorTypes,
      int vocabSize,
      int layers,
      int hiddenSize) {}

  private GgufToHuggingFace() {}

  /** Converts {@code gguf} into the folder {@code output} (created; existing files replaced). */
  public static Result convert(Path gguf, Path output) throws IOException {
    try (GgufFile file = GgufFile.open(gguf)) {
      String architecture = file.string("general.architecture");
      if (!ARCHITECTURES.contains(architecture)) {
        throw file.bad(
            "general.architecture is '"
                + architecture
                + "'; KubeTune converts "
                + ARCHITECTURES
                + " GGUF files");
      }
      if (file.has("general.type") && !file.string("general.type").equals("model")) {
        throw file.bad(
            "general.type is '" + file.string("general.type") + "', not a model (an adapter?)");
      }
      checkKeys(file, architecture);
      GgufTokenizer tokenizer = GgufTokenizer.read(file);
      Hyperparameters h = hyperparameters(file, architecture, tokenizer.tokens.size());
      Map<String, String> hfToGguf = tensorNames(file, h);

      Files.createDirectories(output);
      Map<String, long[]> shapes = new LinkedHashMap<>();
      Map<String, Integer> types = new TreeMap<>();
      long parameters = 0;
      for (Map.Entry<String, String> e : hfToGguf.entrySet()) {
        GgufFile.TensorInfo info = file.tensors().get(e.getValue());
        shapes.put(e.getKey(), info.torchShape());
        types.merge(info.type().name(), 1, Integer::sum);
        parameters += info.elementCount();
      }
      Safetensors.writeFloats(
          output.resolve("model.safetensors"),
          shapes,
          name -> hfValues(file, file.tensors().get(hfToGguf.get(name)), name, h),
          Map.of("format", "pt"));

      writeJson(output.resolve("config.json"), config(h, tokenizer));
      writeJson(output.resolve("generation_config.json"), generationConfig(tokenizer));
      writeJson(output.resolve("tokenizer.json"), tokenizer.tokenizerJson(file));
      writeJson(
          output.resolve("tokenizer_config.json"), tokenizer.tokenizerConfig(h.contextLength()));
      String name = file.has("general.name") ? file.string("general.name") : "";
      return new Result(output, name, parameters, types, h.vocabSize(), h.layers(), h.hiddenSize());
    }
  }

  /** Refuses metadata this conversion would silently drop. */
  private static void checkKeys(GgufFile file, String architecture) {
    for (String key : file.metadata().keySet()) {
      boolean known;
      if (key.startsWith(architecture + ".")) {
        known = LLAMA_KEYS.contains(key.substring(architecture.length() + 1));
      } else if (key.startsWith("tokenizer.")) {
        known = TOKENIZER_KEYS.contains(key);
      } else {
        // general.* describes the file (name, license, quantization); quantize.* records how the
        // quantization was calibrated. Neither changes what the weights compute.
        known = key.startsWith("general.") || key.startsWith("quantize.");
      }
      if (!known) {
        throw file.bad(
            "metadata '"
                + key
                + "' is not something KubeTune's converter reads; converting without it could"
                + " change the model, so the file is refused");
      }
    }
  }

  private static Hyperparameters hyperparameters(GgufFile file, String arch, int tokens) {
    int hidden = file.positiveInt(arch + ".embedding_length");
    int heads = file.positiveInt(arch + ".attention.head_count");
    int kvHeads = file.positiveInt(arch + ".attention.head_count_kv");
    if (hidden % heads != 0 || heads % kvHeads != 0) {
      throw file.bad(
          "embedding_length "
              + hidden
              + ", head_count "
              + heads
              + " and head_count_kv "
              + kvHeads
              + " do not divide evenly");
    }
    int headDim = hidden / heads;
    int rotary = file.positiveInt(arch + ".rope.dimension_count");
    if (rotary != headDim) {
      throw file.bad(
          arch
              + ".rope.dimension_count is "
              + rotary
              + " but the head size is "
              + headDim
              + "; partial rotary embeddings are not supported");
    }
    for (String key : List.of(".attention.key_length", ".attention.value_length")) {
      if (file.has(arch + key) && file.positiveInt(arch + key) != headDim) {
        throw file.bad(arch + key + " differs from the head size " + headDim);
      }
    }
    if (file.has(arch + ".vocab_size") && file.positiveInt(arch + ".vocab_size") != tokens) {
      throw file.bad(
          arch + ".vocab_size differs from the " + tokens + " tokens of tokenizer.ggml.tokens");
    }
    return new Hyperparameters(
        tokens,
        hidden,
        file.positiveInt(arch + ".feed_forward_length"),
        file.positiveInt(arch + ".block_count"),
        heads,
        kvHeads,
        headDim,
        file.positiveInt(arch + ".context_length"),
        file.decimal(arch + ".attention.layer_norm_rms_epsilon"),
        file.decimal(arch + ".rope.freq_base"),
        !file.tensors().containsKey("output.weight"));
  }

  /**
   * transformers names to GGUF names, in the order transformers lists them, after checking that the
   * file holds exactly these tensors with the shapes the hyperparameters imply.
   */
  private static Map<String, String> tensorNames(GgufFile file, Hyperparameters h) {
    Map<String, String> names = new LinkedHashMap<>();
    Map<String, long[]> expected = new LinkedHashMap<>();
    long q = (long) h.heads() * h.headDim();
    long kv = (long) h.kvHeads() * h.headDim();
    long hidden = h.hiddenSize();
    long inter = h.intermediateSize();
    names.put("model.embed_tokens.weight", "token_embd.weight");
    expected.put("token_embd.weight", new long[] {h.vocabSize(), hidden});
    Map<String, long[]> layerShapes =
        Map.of(
            "attn_norm.weight", new long[] {hidden},
            "attn_q.weight", new long[] {q, hidden},
            "attn_k.weight", new long[] {kv, hidden},
            "attn_v.weight", new long[] {kv, hidden},
            "attn_output.weight", new long[] {hidden, q},
            "ffn_norm.weight", new long[] {hidden},
            "ffn_gate.weight", new long[] {inter, hidden},
            "ffn_up.weight", new long[] {inter, hidden},
            "ffn_down.weight", new long[] {hidden, inter});
    List<String> order =
        List.of(
            "attn_norm.weight",
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "ffn_norm.weight",
            "ffn_gate.weight",
            "ffn_up.weight",
            "ffn_down.weight");
    for (int l = 0; l < h.layers(); l++) {
      for (String leaf : order) {
        String ggufName = "blk." + l + "." + leaf;
        names.put("model.layers." + l + "." + LAYER_TENSORS.get(leaf), ggufName);
        expected.put(ggufName, layerShapes.get(leaf));
      }
    }
    names.put("model.norm.weight", "output_norm.weight");
    expected.put("output_norm.weight", new long[] {hidden});
    if (!h.tiedEmbeddings()) {
      names.put("lm_head.weight", "output.weight");
      expected.put("output.weight", new long[] {h.vocabSize(), hidden});
    }
    List<String> extra = new ArrayList<>();
    for (String name : file.tensors().keySet()) {
      if (!expected.containsKey(name)) {
        extra.add(name);
      }
    }
    if (!extra.isEmpty()) {
      throw file.bad(
          "tensors "
              + (extra.size() > 5
                  ? extra.subList(0, 5) + " and " + (extra.size() - 5) + " more"
                  : extra)
              + " are not part of a plain Llama model; KubeTune cannot convert them");
    }
    for (Map.Entry<String, long[]> e : expected.entrySet()) {
      GgufFile.TensorInfo info = file.tensors().get(e.getKey());
      if (info == null) {
        throw file.bad("tensor " + e.getKey() + " is missing");
      }
      if (!Arrays.equals(info.torchShape(), e.getValue())) {
        throw file.bad(
            "tensor "
                + e.getKey()
                + " has shape "
                + Arrays.toString(info.torchShape())
                + ", expected "
                + Arrays.toString(e.getValue())
                + " from the metadata");
      }
    }
    return names;
  }

  /** A tensor's values as transformers holds them. */
  private static float[] hfValues(
      GgufFile file, GgufFile.TensorInfo info, String hfName, Hyperparameters h) {
    float[] values = file.dequantize(info);
    long[] shape = info.torchShape();
    if (hfName.endsWith("self_attn.q_proj.weight")) {
      return unpermuteRotaryRows(values, (int) shape[0], (int) shape[1], h.heads());
    }
    if (hfName.endsWith("self_attn.k_proj.weight")) {
      return unpermuteRotaryRows(values, (int) shape[0], (int) shape[1], h.kvHeads());
    }
    return values;
  }

  /**
   * Undoes the row permutation llama.cpp's converter applies to q_proj and k_proj so that its RoPE
   * can rotate adjacent pairs: within each head, transformers' row {@code s * half + j} (first
   * half, then second half of the head, as {@code rotate_half} expects) was stored at row {@code 2j
   * + s}. Same as transformers' {@code LlamaTensorProcessor._reverse_permute_weights}.
   */
  static float[] unpermuteRotaryRows(float[] gguf, int rows, int cols, int heads) {
    int headDim = rows / heads;
    int half = headDim / 2;
    float[] out = new float[gguf.length];
    for (int head = 0; head < heads; head++) {
      for (int s = 0; s < 2; s++) {
        for (int j = 0; j < half; j++) {
          int from = head * headDim + 2 * j + s;
          int to = head * headDim + s * half + j;
          System.arraycopy(gguf, from * cols, out, to * cols, cols);
        }
      }
    }
    return out;
  }

  private static ObjectNode config(Hyperparameters h, GgufTokenizer tokenizer) {
    ObjectNode node = JSON.createObjectNode();
    node.putArray("architectures").add("LlamaForCausalLM");
    node.put("model_type", "llama");
    node.put("vocab_size", h.vocabSize());
    node.put("hidden_size", h.hiddenSize());
    node.put("intermediate_size", h.intermediateSize());
    node.put("num_hidden_layers", h.layers());
    node.put("num_attention_heads", h.heads());
    node.put("num_key_value_heads", h.kvHeads());
    node.put("head_dim", h.headDim());
    node.put("max_position_embeddings", h.contextLength());
    node.put("rms_norm_eps", h.rmsNormEps());
    // Both spellings: transformers 4.x reads rope_theta at the top, 5.x writes rope_parameters.
    node.put("rope_theta", h.ropeTheta());
    node.putObject("rope_parameters").put("rope_type", "default").put("rope_theta", h.ropeTheta());
    node.put("tie_word_embeddings", h.tiedEmbeddings());
    node.put("hidden_act", "silu");
    node.put("attention_bias", false);
    node.put("mlp_bias", false);
    node.put("bos_token_id", tokenizer.bosId);
    node.put("eos_token_id", tokenizer.eosId);
    if (tokenizer.padId != null) {
      node.put("pad_token_id", tokenizer.padId);
    }
    node.put("torch_dtype", "float32");
    return node;
  }

  private static ObjectNode generationConfig(GgufTokenizer tokenizer) {
    ObjectNode node = JSON.createObjectNode();
    node.put("bos_token_id", tokenizer.bosId);
    if (tokenizer.endOfGenerationIds.size() == 1) {
      node.put("eos_token_id", tokenizer.eosId);
    } else {
      tokenizer.endOfGenerationIds.forEach(node.putArray("eos_token_id")::add);
    }
    if (tokenizer.padId != null) {
      node.put("pad_token_id", tokenizer.padId);
    }
    return node;
  }

  private static void writeJson(Path file, ObjectNode node) throws IOException {
    Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node) + "\n");
  }
}
