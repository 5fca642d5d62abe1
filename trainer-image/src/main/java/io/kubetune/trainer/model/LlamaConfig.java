package io.kubetune.trainer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * The fields of a Hugging Face {@code config.json} that the Llama architecture needs. Mistral and
 * Qwen2 checkpoints share the layout (Qwen2 adds q/k/v biases, which are loaded when present).
 */
public record LlamaConfig(
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int headDim,
    int maxPositionEmbeddings,
    double rmsNormEps,
    double ropeTheta,
    boolean tieWordEmbeddings,
    int bosTokenId,
    int eosTokenId,
    RopeScaling ropeScaling) {

  /**
   * {@code rope_scaling} of config.json: {@code linear} or {@code llama3} (Llama 3.1+), or null.
   * Other types (yarn, dynamic, longrope) are rejected as bad input rather than silently wrong.
   */
  public record RopeScaling(
      String type,
      double factor,
      double lowFreqFactor,
      double highFreqFactor,
      int originalMaxPositionEmbeddings) {

    /** Applies the scaling to one inverse frequency, as transformers' rope init functions do. */
    public double scale(double invFreq) {
      if (type.equals("linear")) {
        return invFreq / factor;
      }
      double lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
      double highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
      double wavelen = 2 * Math.PI / invFreq;
      if (wavelen < highFreqWavelen) {
        return invFreq;
      }
      if (wavelen > lowFreqWavelen) {
        return invFreq / factor;
      }
      double smooth =
          (originalMaxPositionEmbeddings / wavelen - lowFreqFactor)
              / (highFreqFactor - lowFreqFactor);
      return (1 - smooth) * invFreq / factor + smooth * invFreq;
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<String> MODEL_TYPES = Set.of("llama", "mistral", "qwen2");

  public LlamaConfig {
    if (hiddenSize % numAttentionHeads != 0 && headDim <= 0) {
      throw new BadInputException(
          "config.json: hidden_size must be divisible by num_attention_heads");
    }
    if (numAttentionHeads % numKeyValueHeads != 0) {
      throw new BadInputException(
          "config.json: num_attention_heads must be a multiple of num_key_value_heads");
    }
  }

  /** Parses {@code config.json}; an unknown architecture is a bad-input error. */
  public static LlamaConfig read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (IOException e) {
      throw new BadInputException(
          "cannot read model config " + file + ": " + e.getMessage() + " (is baseModel.uri right?)",
          e);
    }
    String modelType = root.path("model_type").asText("");
    if (!MODEL_TYPES.contains(modelType)) {
      throw new BadInputException(
          file
              + ": unsupported architecture model_type '"
              + modelType
              + "'; KubeTune trains Llama-architecture models (llama, mistral, qwen2)");
    }
    int hidden = required(root, "hidden_size", file);
    int heads = required(root, "num_attention_heads", file);
    return new LlamaConfig(
        required(root, "vocab_size", file),
        hidden,
        required(root, "intermediate_size", file),
        required(root, "num_hidden_layers", file),
        heads,
        root.path("num_key_value_heads").asInt(heads),
        root.path("head_dim").asInt(hidden / heads),
        root.path("max_position_embeddings").asInt(2048),
        root.path("rms_norm_eps").asDouble(1e-6),
        root.path("rope_theta").asDouble(10000.0),
        root.path("tie_word_embeddings").asBoolean(false),
        root.path("bos_token_id").asInt(1),
        root.path("eos_token_id").isArray()
            ? root.path("eos_token_id").get(0).asInt()
            : root.path("eos_token_id").asInt(2),
        ropeScaling(root, file));
  }

  private static RopeScaling ropeScaling(JsonNode root, Path file) {
    JsonNode node = root.path("rope_scaling");
    if (node.isMissingNode() || node.isNull()) {
      return null;
    }
    String type =
        node.hasNonNull("rope_type") ? node.get("rope_type").asText() : node.path("type").asText();
    if (type.equals("default")) {
      return null;
    }
    if (!type.equals("linear") && !type.equals("llama3")) {
      throw new BadInputException(
          file + ": rope_scaling type '" + type + "' is not supported (supported: linear, llama3)");
    }
    return new RopeScaling(
        type,
        node.path("factor").asDouble(1.0),
        node.path("low_freq_factor").asDouble(1.0),
        node.path("high_freq_factor").asDouble(4.0),
        node.path("original_max_position_embeddings").asInt(8192));
  }

  private static int required(JsonNode root, String field, Path file) {
    if (!root.hasNonNull(field)) {
      throw new BadInputException(file + ": missing field " + field);
    }
    return root.get(field).asInt();
  }

  /** The config.json Hugging Face transformers writes for {@code LlamaForCausalLM}. */
  public ObjectNode toJson() {
    ObjectNode node = JSON.createObjectNode();
    node.putArray("architectures").add("LlamaForCausalLM");
    node.put("model_type", "llama");
    node.put("vocab_size", vocabSize);
    node.put("hidden_size", hiddenSize);
    node.put("intermediate_size", intermediateSize);
    node.put("num_hidden_layers", numHiddenLayers);
    node.put("num_attention_heads", numAttentionHeads);
    node.put("num_key_value_heads", numKeyValueHeads);
    node.put("head_dim", headDim);
    node.put("max_position_embeddings", maxPositionEmbeddings);
    node.put("rms_norm_eps", rmsNormEps);
    node.put("rope_theta", ropeTheta);
    node.put("tie_word_embeddings", tieWordEmbeddings);
    node.put("bos_token_id", bosTokenId);
    node.put("eos_token_id", eosTokenId);
    if (ropeScaling != null) {
      ObjectNode scaling = node.putObject("rope_scaling");
      scaling.put("rope_type", ropeScaling.type());
      scaling.put("factor", ropeScaling.factor());
      if (ropeScaling.type().equals("llama3")) {
        scaling.put("low_freq_factor", ropeScaling.lowFreqFactor());
        scaling.put("high_freq_factor", ropeScaling.highFreqFactor());
        scaling.put(
            "original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
      }
    }
    node.put("hidden_act", "silu");
    node.put("attention_bias", false);
    node.put("mlp_bias", false);
    node.put("torch_dtype", "float32");
    return node;
  }

  public void write(Path file) throws IOException {
    Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(toJson()));
  }

  /** Parameter count of the base model (embeddings counted once when tied). */
  public long parameterCount() {
    long attention =
        (long) hiddenSize * numAttentionHeads * headDim * 2
            + (long) hiddenSize * numKeyValueHeads * headDim * 2;
    long mlp = 3L * hiddenSize * intermediateSize;
    long layer = attention + mlp + 2L * hiddenSize;
    long embeddings = (long) vocabSize * hiddenSize * (tieWordEmbeddings ? 1 : 2);
    return embeddings + layer * numHiddenLayers + hiddenSize;
  }
}
