package io.kubetune.trainer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.IntNode;
import io.kubetune.trainer.BadInputException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The LoRA settings of a PEFT {@code adapter_config.json}, as the project applies them at
 * inference. Every field of PEFT 0.21's {@code LoraConfig} is handled deliberately (the table is in
 * docs/trainer.md): applied ({@code r}, {@code lora_alpha}, {@code target_modules}, {@code
 * use_rslora}, {@code rank_pattern}, {@code alpha_pattern}, the classifier head in {@code
 * modules_to_save}), irrelevant at inference (metadata, dropout, initialisation that leaves the
 * base weights unchanged), or refused with a {@link BadInputException} naming the field, because it
 * would change the outputs in a way the project does not compute. Unknown fields that are set (e.g.
 * a feature of a newer PEFT) are refused too.
 *
 * @param taskType {@code CAUSAL_LM} or {@code SEQ_CLS} (a missing task type reads as {@code
 *     CAUSAL_LM}: the adapter then wraps the bare causal model with the same tensor names)
 */
public record PeftLoraConfig(
    String taskType,
    int rank,
    double alpha,
    boolean useRslora,
    List<String> targetModules,
    Map<String, Integer> rankPattern,
    Map<String, Double> alphaPattern) {

  /** Metadata and training-only settings: they do not change what a loaded adapter computes. */
  static final Set<String> IRRELEVANT_AT_INFERENCE =
      Set.of(
          "peft_type", // checked: LORA
          "auto_mapping",
          "peft_version",
          "base_model_name_or_path",
          "revision",
          "inference_mode",
          "lora_dropout",
          "megatron_core", // only used with megatron_config, which is refused
          "eva_config", // initialisation of A only (B = 0), base unchanged
          "corda_config", // refused through init_lora_weights = corda
          "lora_ga_config", // initialisation only, base unchanged
          "qalora_group_size", // only used with use_qalora, which is refused
          "runtime_config", // ephemeral GPU offload
          "ensure_weight_tying", // only matters for tied modules, which cannot be targeted here
          "kubetune"); // this project's record of the base (see docs/trainer.md)

  /** Fields read by {@link #parse}. */
  static final Set<String> APPLIED =
      Set.of(
          "task_type",
          "r",
          "lora_alpha",
          "target_modules",
          "use_rslora",
          "rank_pattern",
          "alpha_pattern",
          "modules_to_save",
          "init_lora_weights");

  /**
   * Fields whose non-default value changes the forward pass (or needs a modified base) in a way the
   * project does not implement, with what they are. Their defaults (null, false, empty, "none") are
   * accepted.
   */
  static final Map<String, String> REFUSED =
      Map.ofEntries(
          Map.entry("use_dora", "DoRA (weight-decomposed LoRA)"),
          Map.entry("layers_to_transform", "LoRA on selected layers only"),
          Map.entry("layers_pattern", "the layer pattern for layers_to_transform"),
          Map.entry("exclude_modules", "modules excluded from target_modules"),
          Map.entry("bias", "trained biases (bias other than 'none')"),
          Map.entry("fan_in_fan_out", "Conv1D-style transposed weights"),
          Map.entry("lora_bias", "a bias on lora_B"),
          Map.entry("target_parameters", "LoRA on nn.Parameters (e.g. MoE experts)"),
          Map.entry("megatron_config", "Megatron parallel layers"),
          Map.entry("use_qalora", "QALoRA (pooled inputs for quantised bases)"),
          Map.entry("trainable_token_indices", "trained token embeddings"),
          Map.entry("loftq_config", "LoftQ (needs its quantised, modified base)"),
          Map.entry("velora_config", "the VeLoRA variant"),
          Map.entry("alora_invocation_tokens", "activated LoRA (aLoRA)"),
          Map.entry("monteclora_config", "the MonteCLoRA variant"),
          Map.entry("layer_replication", "replicated layers"),
          Map.entry("use_bdlora", "block-diagonal LoRA"),
          Map.entry("arrow_config", "Arrow routing"),
          Map.entry("kasa_config", "the KaSA variant"));

  /**
   * {@code init_lora_weights} values that only initialise A and B (the base stays as it is), so a
   * trained adapter is plain LoRA. PiSSA, OLoRA, CorDA and LoftQ subtract their initial update from
   * the base weights (the adapter then only fits that modified base) and MiCA is a LoRA variant.
   */
  static final Set<String> PLAIN_INITIALISATIONS =
      Set.of("gaussian", "eva", "orthogonal", "lora_ga");

  /** PEFT's default {@code modules_to_save} for sequence classification, and its head here. */
  static final Set<String> CLASSIFIER_HEADS = Set.of("score", "classifier");

  private static final JsonNode PEFT_DEFAULT_R = IntNode.valueOf(8);
  private static final JsonNode PEFT_DEFAULT_ALPHA = IntNode.valueOf(8);

  public static final List<String> ALL_LINEAR =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  /**
   * Reads and checks {@code config}; {@code file} names it in errors.
   *
   * @throws BadInputException naming the field for anything not supported
   */
  public static PeftLoraConfig parse(JsonNode config, String file) {
    if (!"LORA".equals(config.path("peft_type").asText())) {
      throw new BadInputException(
          file
              + ": peft_type is '"
              + config.path("peft_type").asText()
              + "', only LORA adapters are supported");
    }
    for (var it = config.fieldNames(); it.hasNext(); ) {
      String field = it.next();
      JsonNode value = config.get(field);
      if (APPLIED.contains(field) || IRRELEVANT_AT_INFERENCE.contains(field)) {
        continue;
      }
      if (REFUSED.containsKey(field)) {
        if (!isDefault(field, value)) {
          throw new BadInputException(
              file
                  + ": "
                  + field
                  + " = "
                  + value
                  + " ("
                  + REFUSED.get(field)
                  + ") is not supported; KubeTune serves plain LoRA, rsLoRA and"
                  + " rank_pattern/alpha_pattern adapters. Merge the adapter into the base with PEFT"
                  + " (merge_and_unload) and serve the merged model instead");
        }
        continue;
      }
      if (!isUnset(value)) {
        throw new BadInputException(
            file
                + ": unknown field "
                + field
                + " = "
                + value
                + " (from a newer PEFT?); KubeTune does not know what it changes and refuses the"
                + " adapter rather than compute something else");
      }
    }
    String taskType = config.path("task_type").isNull() ? "" : config.path("task_type").asText("");
    if (taskType.isEmpty()) {
      taskType = "CAUSAL_LM";
    }
    if (!taskType.equals("CAUSAL_LM") && !taskType.equals("SEQ_CLS")) {
      throw new BadInputException(
          file + ": task_type " + taskType + " is not supported; use CAUSAL_LM or SEQ_CLS");
    }
    // A missing r or lora_alpha means PEFT's default (8), as PeftConfig.from_pretrained reads it.
    JsonNode r = config.has("r") ? config.get("r") : PEFT_DEFAULT_R;
    if (!r.isIntegralNumber() || r.asInt() <= 0) {
      throw new BadInputException(file + ": r (the LoRA rank) must be a positive integer");
    }
    JsonNode alpha = config.has("lora_alpha") ? config.get("lora_alpha") : PEFT_DEFAULT_ALPHA;
    if (!alpha.isNumber()) {
      throw new BadInputException(file + ": lora_alpha must be a number");
    }
    checkInitialisation(config.path("init_lora_weights"), file);
    checkModulesToSave(config.path("modules_to_save"), taskType, file);
    return new PeftLoraConfig(
        taskType,
        r.asInt(),
        alpha.asDouble(),
        config.path("use_rslora").asBoolean(false),
        targetModules(config.path("target_modules"), file),
        rankPattern(config.path("rank_pattern"), file),
        alphaPattern(config.path("alpha_pattern"), file));
  }

  /** The rank of one module, e.g. {@code model.layers.0.self_attn.q_proj}. */
  public int rank(String moduleName) {
    String key = patternKey(rankPattern.keySet(), moduleName);
    return key == null ? rank : rankPattern.get(key);
  }

  public double alpha(String moduleName) {
    String key = patternKey(alphaPattern.keySet(), moduleName);
    return key == null ? alpha : alphaPattern.get(key);
  }

  /** alpha/r, or alpha/sqrt(r) with rsLoRA, with the module's own rank and alpha (as PEFT). */
  public double scaling(String moduleName) {
    int r = rank(moduleName);
    return useRslora ? alpha(moduleName) / Math.sqrt(r) : alpha(moduleName) / r;
  }

  /**
   * The first pattern that matches the module name as PEFT's {@code get_pattern_key} does: the
   * pattern (a regular expression) must match the whole name or its end after a dot. Null when none
   * matches.
   */
  static String patternKey(Iterable<String> patterns, String moduleName) {
    for (String pattern : patterns) {
      if (Pattern.compile("(.*\\.)?(" + pattern + ")").matcher(moduleName).matches()) {
        return pattern;
      }
    }
    return null;
  }

  private static List<String> targetModules(JsonNode node, String file) {
    if (node.isTextual() && node.asText().equals("all-linear")) {
      return ALL_LINEAR; // PEFT: every linear layer but the output head
    }
    if (!node.isArray() || node.isEmpty()) {
      throw new BadInputException(
          file
              + ": target_modules must be a list of module names (or \"all-linear\"); a regular"
              + " expression ("
              + node
              + ") is not supported");
    }
    List<String> targets = new ArrayList<>();
    for (JsonNode n : node) {
      String t = n.asText();
      if (!ALL_LINEAR.contains(t)) {
        throw new BadInputException(
            file
                + ": LoRA on '"
                + t
                + "' is not supported: '"
                + t
                + "' does not exist as a projection of a Llama-architecture decoder layer;"
                + " target_modules may list q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,"
                + " down_proj");
      }
      if (!targets.contains(t)) {
        targets.add(t);
      }
    }
    return List.copyOf(targets);
  }

  private static Map<String, Integer> rankPattern(JsonNode node, String file) {
    Map<String, Integer> pattern = new LinkedHashMap<>();
    if (isUnset(node)) {
      return pattern;
    }
    if (!node.isObject()) {
      throw new BadInputException(file + ": rank_pattern must map module patterns to ranks");
    }
    for (var it = node.fields(); it.hasNext(); ) {
      var e = it.next();
      if (!e.getValue().isIntegralNumber() || e.getValue().asInt() <= 0) {
        throw new BadInputException(
            file + ": rank_pattern['" + e.getKey() + "'] must be a positive integer");
      }
      pattern.put(e.getKey(), e.getValue().asInt());
    }
    return pattern;
  }

  private static Map<String, Double> alphaPattern(JsonNode node, String file) {
    Map<String, Double> pattern = new LinkedHashMap<>();
    if (isUnset(node)) {
      return pattern;
    }
    if (!node.isObject()) {
      throw new BadInputException(file + ": alpha_pattern must map module patterns to alphas");
    }
    for (var it = node.fields(); it.hasNext(); ) {
      var e = it.next();
      if (!e.getValue().isNumber()) {
        throw new BadInputException(
            file + ": alpha_pattern['" + e.getKey() + "'] must be a number");
      }
      pattern.put(e.getKey(), e.getValue().asDouble());
    }
    return pattern;
  }

  private static void checkInitialisation(JsonNode init, String file) {
    if (init.isMissingNode() || init.isNull() || init.isBoolean()) {
      return;
    }
    if (!init.isTextual() || !PLAIN_INITIALISATIONS.contains(init.asText())) {
      throw new BadInputException(
          file
              + ": init_lora_weights = "
              + init
              + " is not supported: PiSSA, OLoRA, CorDA and LoftQ adapters only fit the base"
              + " weights their initialisation modified, and MiCA is a LoRA variant. Save the"
              + " adapter with PEFT's path_initial_model_for_weight_conversion to get plain LoRA");
    }
  }

  private static void checkModulesToSave(JsonNode modules, String taskType, String file) {
    if (isUnset(modules)) {
      return;
    }
    if (!modules.isArray()) {
      throw new BadInputException(file + ": modules_to_save must be a list");
    }
    for (JsonNode m : modules) {
      boolean head = taskType.equals("SEQ_CLS") && CLASSIFIER_HEADS.contains(m.asText());
      if (!head) {
        throw new BadInputException(
            file
                + ": modules_to_save lists '"
                + m.asText()
                + "'; only the classifier head (score) of a SEQ_CLS adapter is supported, fully"
                + " trained copies of other modules are not");
      }
    }
  }

  private static boolean isDefault(String field, JsonNode value) {
    if (field.equals("bias")) {
      return value.isNull() || value.asText().equals("none");
    }
    return isUnset(value);
  }

  /** null, false, an empty list/object/string: PEFT's "not set" for optional features. */
  private static boolean isUnset(JsonNode value) {
    return value == null
        || value.isMissingNode()
        || value.isNull()
        || (value.isBoolean() && !value.asBoolean())
        || (value.isContainerNode() && value.isEmpty())
        || (value.isTextual() && value.asText().isEmpty());
  }
}
