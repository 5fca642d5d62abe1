package io.kubetune.trainer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * The fields of a Hugging Face {@code config.json} that the decoder needs, for the architectures
 * that share Llama's layout: {@code llama}, {@code mistral} (sliding-window attention), {@code
 * qwen2} (q/k/v biases, optional sliding window) and {@code qwen3} (RMSNorm on each query and key
 * head). Config files of transformers 4.x ({@code rope_theta}, {@code rope_scaling}, {@code
 * torch_dtype}) and 5.x ({@code rope_parameters}, {@code dtype}) are both read.
 *
 * <p>A field absent from the file takes exactly the default of transformers' config class for that
 * {@code model_type} (checked against transformers 5.24; see {@link Defaults}); a value the model
 * does not implement is rejected with the field named, never approximated.
 *
 * @param configuredBosTokenId {@code bos_token_id}, or null when the config has none (Qwen)
 * @param eosTokenIds every id of {@code eos_token_id} (an int or a list), in file order; empty when
 *     the config has none
 * @param attentionBias q, k, v and o projections carry biases ({@code attention_bias} of llama and
 *     qwen3)
 * @param qkvBias q, k and v projections carry biases (always for qwen2)
 * @param qkNorm RMSNorm over each query and key head before RoPE (qwen3)
 * @param slidingWindow the attention window of the layers in {@code slidingWindowLayers}: a query
 *     at position p sees keys in (p - window, p]; null when no layer has one
 */
public record LlamaConfig(
    String modelType,
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
    Integer configuredBosTokenId,
    List<Integer> eosTokenIds,
    RopeScaling ropeScaling,
    boolean attentionBias,
    boolean qkvBias,
    boolean qkNorm,
    Integer slidingWindow,
    Set<Integer> slidingWindowLayers) {

  /** The {@code model_type}s this decoder implements. */
  public static final List<String> MODEL_TYPES = List.of("llama", "mistral", "qwen2", "qwen3");

  /**
   * {@code rope_scaling} (transformers 4) or the scaling part of {@code rope_parameters}
   * (transformers 5): {@code linear} or {@code llama3} (Llama 3.1+), or null for {@code default}.
   * Other types (yarn, dynamic, longrope, ...) are rejected as bad input rather than silently
   * wrong.
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

  /**
   * Defaults of transformers' {@code LlamaConfig}, {@code MistralConfig}, {@code Qwen2Config} and
   * {@code Qwen3Config} (5.24) for the fields read here; null means the class has none (the field
   * is then {@code None} in transformers). {@code headDim} null: hidden_size / num_attention_heads.
   * {@code kvHeads} null: num_attention_heads. The shape fields (vocab, hidden, intermediate,
   * layers, heads) are required instead: a checkpoint without them is not one transformers wrote.
   */
  record Defaults(
      Integer kvHeads,
      Integer headDim,
      int maxPositionEmbeddings,
      Integer bosTokenId,
      Integer eosTokenId,
      Integer slidingWindow) {
    static Defaults of(String modelType) {
      return switch (modelType) {
        case "llama" -> new Defaults(null, null, 2048, 1, 2, null);
        case "mistral" -> new Defaults(8, null, 4096 * 32, 1, 2, 4096);
        case "qwen2" -> new Defaults(32, null, 32768, null, null, 4096);
        case "qwen3" -> new Defaults(32, 128, 32768, null, null, 4096);
        default -> throw new IllegalArgumentException(modelType);
      };
    }
  }

  /** transformers' {@code RotaryEmbeddingConfigMixin.default_theta}. */
  private static final double DEFAULT_ROPE_THETA = 10_000.0;

  /** transformers' {@code PreTrainedConfig} default {@code rms_norm_eps} of all four classes. */
  private static final double DEFAULT_RMS_NORM_EPS = 1e-6;

  /** transformers' Qwen2/Qwen3 default {@code max_window_layers}. */
  private static final int DEFAULT_MAX_WINDOW_LAYERS = 28;

  private static final ObjectMapper JSON = new ObjectMapper();

  public LlamaConfig {
    if (!MODEL_TYPES.contains(modelType)) {
      throw new BadInputException(
          "config.json: unsupported model_type '"
              + modelType
              + "'; supported model_types: "
              + String.join(", ", MODEL_TYPES));
    }
    if (numKeyValueHeads <= 0 || numAttentionHeads % numKeyValueHeads != 0) {
      throw new BadInputException(
          "config.json: num_attention_heads must be a multiple of num_key_value_heads");
    }
    if (headDim <= 0 || headDim % 2 != 0) {
      throw new BadInputException("config.json: head_dim must be even and positive for RoPE");
    }
    eosTokenIds = List.copyOf(eosTokenIds);
    slidingWindowLayers = Set.copyOf(slidingWindowLayers);
    if (slidingWindow == null && !slidingWindowLayers.isEmpty()) {
      throw new IllegalArgumentException("sliding-window layers without a sliding_window");
    }
  }

  /**
   * {@code bos_token_id}; a model whose config has none (Qwen2/Qwen3 may) is refused for uses that
   * need one, naming the field.
   */
  public int bosTokenId() {
    if (configuredBosTokenId == null) {
      throw new BadInputException(
          "config.json has no bos_token_id (model_type " + modelType + "); set bos_token_id");
    }
    return configuredBosTokenId;
  }

  /**
   * The first id of {@code eos_token_id}: the token appended to training examples and used as
   * padding. Generation stops on any of {@link #eosTokenIds()}.
   */
  public int eosTokenId() {
    if (eosTokenIds.isEmpty()) {
      throw new BadInputException(
          "config.json has no eos_token_id (model_type " + modelType + "); set eos_token_id");
    }
    return eosTokenIds.get(0);
  }

  /** Whether layer {@code layer} attends within {@link #slidingWindow()} only. */
  public boolean slidingWindowAt(int layer) {
    return slidingWindowLayers.contains(layer);
  }

  /** Parses {@code config.json}; an unknown architecture or unsupported value is bad input. */
  public static LlamaConfig read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (IOException e) {
      throw new BadInputException(
          "cannot read model config " + file + ": " + e.getMessage() + " (is baseModel.uri right?)",
          e);
    }
    if (root == null || !root.isObject()) {
      throw new BadInputException(file + ": not a JSON object");
    }
    return new Parser(file, root).parse();
  }

  /** Reads one config.json; every rejection names the file and the field. */
  private record Parser(Path file, JsonNode root) {

    LlamaConfig parse() {
      String modelType = root.path("model_type").asText("");
      if (!MODEL_TYPES.contains(modelType)) {
        throw bad(
            "model_type",
            "'"
                + modelType
                + "' is not supported; supported model_types: "
                + String.join(", ", MODEL_TYPES));
      }
      Defaults defaults = Defaults.of(modelType);
      if (root.hasNonNull("quantization_config")) {
        throw bad(
            "quantization_config",
            "quantized checkpoints are not supported; use the model's fp32/bf16/fp16 weights");
      }
      String act = root.path("hidden_act").asText("silu");
      if (!act.equals("silu")) {
        throw bad("hidden_act", "'" + act + "' is not supported (only silu)");
      }
      if (modelType.equals("llama") && bool("mlp_bias", false)) {
        throw bad("mlp_bias", "true is not supported (MLP projections without biases only)");
      }
      dtype();
      int hidden = required("hidden_size");
      int heads = required("num_attention_heads");
      int layers = required("num_hidden_layers");
      int kvHeads =
          positive(
              "num_key_value_heads",
              integer(
                  "num_key_value_heads", defaults.kvHeads() == null ? heads : defaults.kvHeads()));
      int headDim;
      if (root.hasNonNull("head_dim")) {
        headDim = positive("head_dim", integer("head_dim", 0));
      } else if (defaults.headDim() != null) {
        headDim = defaults.headDim();
      } else {
        if (hidden % heads != 0) {
          throw bad(
              "head_dim", "is absent and hidden_size is not divisible by num_attention_heads");
        }
        headDim = hidden / heads;
      }
      int maxPositions =
          positive(
              "max_position_embeddings",
              integer("max_position_embeddings", defaults.maxPositionEmbeddings()));
      boolean attentionBias =
          (modelType.equals("llama") || modelType.equals("qwen3")) && bool("attention_bias", false);
      Integer window = null;
      Set<Integer> slidingLayers = Set.of();
      if (modelType.equals("mistral")) {
        window =
            root.has("sliding_window")
                ? optionalInteger("sliding_window")
                : defaults.slidingWindow();
        if (window != null) {
          slidingLayers = allLayers(layers);
        }
      } else if (modelType.startsWith("qwen")) {
        if (bool("use_sliding_window", false)) {
          window =
              root.has("sliding_window")
                  ? optionalInteger("sliding_window")
                  : defaults.slidingWindow();
        }
        slidingLayers = qwenSlidingLayers(window, layers);
      }
      if (window != null && window <= 0) {
        throw bad("sliding_window", "must be positive, got " + window);
      }
      Rope rope = rope(maxPositions);
      return new LlamaConfig(
          modelType,
          required("vocab_size"),
          hidden,
          required("intermediate_size"),
          layers,
          heads,
          kvHeads,
          headDim,
          maxPositions,
          number("rms_norm_eps", DEFAULT_RMS_NORM_EPS),
          rope.theta(),
          bool("tie_word_embeddings", false),
          root.has("bos_token_id") ? optionalInteger("bos_token_id") : defaults.bosTokenId(),
          eosTokenIds(defaults.eosTokenId()),
          rope.scaling(),
          attentionBias,
          modelType.equals("qwen2"),
          modelType.equals("qwen3"),
          window,
          slidingLayers);
    }

    /** Which layers slide, as Qwen2Config/Qwen3Config derive {@code layer_types}. */
    private Set<Integer> qwenSlidingLayers(Integer window, int layers) {
      JsonNode types = root.path("layer_types");
      Set<Integer> sliding = new TreeSet<>();
      if (types.isArray()) {
        if (types.size() != layers) {
          throw bad("layer_types", "has " + types.size() + " entries for " + layers + " layers");
        }
        for (int l = 0; l < layers; l++) {
          String type = types.get(l).asText();
          if (type.equals("sliding_attention")) {
            if (window == null) {
              throw bad(
                  "layer_types",
                  "names sliding_attention but use_sliding_window/sliding_window set no window");
            }
            sliding.add(l);
          } else if (!type.equals("full_attention")) {
            throw bad(
                "layer_types",
                "'" + type + "' is not supported (full_attention, sliding_attention)");
          }
        }
      } else if (window != null) {
        int first = integer("max_window_layers", DEFAULT_MAX_WINDOW_LAYERS);
        for (int l = first; l < layers; l++) {
          sliding.add(l);
        }
      }
      return sliding;
    }

    private static Set<Integer> allLayers(int layers) {
      Set<Integer> all = new TreeSet<>();
      for (int l = 0; l < layers; l++) {
        all.add(l);
      }
      return all;
    }

    private record Rope(double theta, RopeScaling scaling) {}

    /**
     * As transformers' {@code convert_rope_params_to_dict}: a {@code rope_scaling} dict (4.x) takes
     * precedence over {@code rope_parameters} (5.x); {@code rope_theta} inside that dict wins over
     * a top-level one, which wins over {@code default_theta}.
     */
    private Rope rope(int maxPositions) {
      String field = "rope_scaling";
      JsonNode params = root.path("rope_scaling");
      if (params.isMissingNode() || params.isNull() || params.isEmpty()) {
        field = "rope_parameters";
        params = root.path("rope_parameters");
      }
      if (params.isMissingNode() || params.isNull()) {
        params = JSON.createObjectNode();
      }
      if (!params.isObject()) {
        throw bad(field, "must be an object");
      }
      for (String key : List.of("full_attention", "sliding_attention")) {
        if (params.has(key)) {
          throw bad(field, "per-layer-type RoPE parameters are not supported");
        }
      }
      if (params.has("partial_rotary_factor") || root.has("partial_rotary_factor")) {
        throw bad("partial_rotary_factor", "partial rotary embeddings are not supported");
      }
      double theta;
      if (params.hasNonNull("rope_theta")) {
        theta = numberIn(params, field, "rope_theta");
      } else {
        theta = number("rope_theta", DEFAULT_ROPE_THETA);
      }
      String type =
          params.hasNonNull("rope_type")
              ? params.get("rope_type").asText()
              : params.path("type").asText("default");
      RopeScaling scaling =
          switch (type) {
            case "default" -> null;
            case "linear" -> new RopeScaling(type, numberIn(params, field, "factor"), 0, 0, 0);
            case "llama3" ->
                new RopeScaling(
                    type,
                    numberIn(params, field, "factor"),
                    numberIn(params, field, "low_freq_factor"),
                    numberIn(params, field, "high_freq_factor"),
                    params.hasNonNull("original_max_position_embeddings")
                        ? (int) numberIn(params, field, "original_max_position_embeddings")
                        : maxPositions);
            default ->
                throw bad(
                    field + ".rope_type",
                    "'" + type + "' is not supported (supported: default, linear, llama3)");
          };
      return new Rope(theta, scaling);
    }

    /** {@code dtype} (5.x) or {@code torch_dtype} (4.x): informative, but must be a float type. */
    private void dtype() {
      for (String field : List.of("dtype", "torch_dtype")) {
        if (root.hasNonNull(field)) {
          String value = root.get(field).asText();
          if (!List.of("float32", "bfloat16", "float16").contains(value)) {
            throw bad(field, "'" + value + "' is not supported (float32, bfloat16, float16)");
          }
        }
      }
    }

    private List<Integer> eosTokenIds(Integer fallback) {
      if (!root.has("eos_token_id")) {
        return fallback == null ? List.of() : List.of(fallback);
      }
      JsonNode node = root.get("eos_token_id");
      List<Integer> ids = new ArrayList<>();
      if (node.isNull()) {
        return ids;
      }
      if (node.isArray()) {
        for (JsonNode id : node) {
          if (!id.canConvertToInt()) {
            throw bad("eos_token_id", "must be an integer or a list of integers");
          }
          ids.add(id.asInt());
        }
      } else if (node.canConvertToInt()) {
        ids.add(node.asInt());
      } else {
        throw bad("eos_token_id", "must be an integer or a list of integers");
      }
      return ids;
    }

    /** A shape field: present and at least 1 (0 would divide by zero or build an empty model). */
    private int required(String field) {
      if (!root.hasNonNull(field)) {
        throw bad(field, "is missing");
      }
      return positive(field, integer(field, 0));
    }

    private int positive(String field, int value) {
      if (value < 1) {
        throw bad(field, "must be a positive integer, got " + value);
      }
      return value;
    }

    private int integer(String field, int fallback) {
      if (!root.hasNonNull(field)) {
        return fallback;
      }
      JsonNode value = root.get(field);
      if (!value.canConvertToInt() || !value.isIntegralNumber()) {
        throw bad(field, "must be an integer, got " + value);
      }
      return value.asInt();
    }

    private Integer optionalInteger(String field) {
      return root.hasNonNull(field) ? integer(field, 0) : null;
    }

    private double number(String field, double fallback) {
      if (!root.hasNonNull(field)) {
        return fallback;
      }
      if (!root.get(field).isNumber()) {
        throw bad(field, "must be a number, got " + root.get(field));
      }
      return root.get(field).asDouble();
    }

    private double numberIn(JsonNode params, String parent, String field) {
      if (!params.hasNonNull(field)) {
        throw bad(parent + "." + field, "is missing");
      }
      if (!params.get(field).isNumber()) {
        throw bad(parent + "." + field, "must be a number, got " + params.get(field));
      }
      return params.get(field).asDouble();
    }

    private boolean bool(String field, boolean fallback) {
      if (!root.hasNonNull(field)) {
        return fallback;
      }
      if (!root.get(field).isBoolean()) {
        throw bad(field, "must be true or false, got " + root.get(field));
      }
      return root.get(field).asBoolean();
    }

    private BadInputException bad(String field, String problem) {
      return new BadInputException(file + ": field " + field + " " + problem);
    }
  }

  /**
   * The config.json of this model as transformers 5 writes it ({@code rope_parameters}, {@code
   * dtype}), plus the transformers 4 keys ({@code rope_theta}, {@code rope_scaling}, {@code
   * torch_dtype}) with the same values, so both versions load it; {@link #read} returns an equal
   * config.
   */
  public ObjectNode toJson() {
    ObjectNode node = JSON.createObjectNode();
    node.putArray("architectures").add(architecture());
    node.put("model_type", modelType);
    node.put("vocab_size", vocabSize);
    node.put("hidden_size", hiddenSize);
    node.put("intermediate_size", intermediateSize);
    node.put("num_hidden_layers", numHiddenLayers);
    node.put("num_attention_heads", numAttentionHeads);
    node.put("num_key_value_heads", numKeyValueHeads);
    node.put("head_dim", headDim);
    node.put("max_position_embeddings", maxPositionEmbeddings);
    node.put("rms_norm_eps", rmsNormEps);
    node.put("tie_word_embeddings", tieWordEmbeddings);
    if (configuredBosTokenId == null) {
      node.putNull("bos_token_id");
    } else {
      node.put("bos_token_id", configuredBosTokenId);
    }
    if (eosTokenIds.isEmpty()) {
      node.putNull("eos_token_id");
    } else if (eosTokenIds.size() == 1) {
      node.put("eos_token_id", eosTokenIds.get(0));
    } else {
      eosTokenIds.forEach(node.putArray("eos_token_id")::add);
    }
    node.put("rope_theta", ropeTheta);
    ObjectNode rope = node.putObject("rope_parameters");
    rope.put("rope_type", ropeScaling == null ? "default" : ropeScaling.type());
    rope.put("rope_theta", ropeTheta);
    if (ropeScaling != null) {
      rope.put("factor", ropeScaling.factor());
      if (ropeScaling.type().equals("llama3")) {
        rope.put("low_freq_factor", ropeScaling.lowFreqFactor());
        rope.put("high_freq_factor", ropeScaling.highFreqFactor());
        rope.put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
      }
      node.set("rope_scaling", rope.deepCopy());
    }
    switch (modelType) {
      case "llama" -> {
        node.put("attention_bias", attentionBias);
        node.put("mlp_bias", false);
      }
      case "qwen3" -> node.put("attention_bias", attentionBias);
      default -> {}
    }
    if (modelType.equals("mistral")) {
      if (slidingWindow == null) {
        node.putNull("sliding_window");
      } else {
        node.put("sliding_window", slidingWindow);
      }
    } else if (modelType.startsWith("qwen")) {
      node.put("use_sliding_window", slidingWindow != null);
      if (slidingWindow == null) {
        node.putNull("sliding_window");
      } else {
        node.put("sliding_window", slidingWindow);
      }
      var types = node.putArray("layer_types");
      for (int l = 0; l < numHiddenLayers; l++) {
        types.add(slidingWindowAt(l) ? "sliding_attention" : "full_attention");
      }
    }
    node.put("hidden_act", "silu");
    node.put("dtype", "float32");
    node.put("torch_dtype", "float32");
    return node;
  }

  private String architecture() {
    return switch (modelType) {
      case "llama" -> "LlamaForCausalLM";
      case "mistral" -> "MistralForCausalLM";
      case "qwen2" -> "Qwen2ForCausalLM";
      case "qwen3" -> "Qwen3ForCausalLM";
      default -> throw new IllegalStateException(modelType);
    };
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
    long biases =
        (attentionBias || qkvBias ? (long) (numAttentionHeads + 2 * numKeyValueHeads) * headDim : 0)
            + (attentionBias ? hiddenSize : 0);
    long norms = 2L * hiddenSize + (qkNorm ? 2L * headDim : 0);
    long layer = attention + mlp + biases + norms;
    long embeddings = (long) vocabSize * hiddenSize * (tieWordEmbeddings ? 1 : 2);
    return embeddings + layer * numHiddenLayers + hiddenSize;
  }
}
