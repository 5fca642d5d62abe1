package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A LoRA adapter: for each targeted linear module W (out, in), A (r, in) and B (out, r), and the
 * forward pass adds (alpha / r)·B·A·x. Saved and loaded in PEFT's layout.
 */
public final class LoraAdapter implements AutoCloseable {

  /** PEFT prefixes module names with the PeftModel and LlamaForCausalLM wrappers. */
  public static final String PEFT_PREFIX = "base_model.model.";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final int rank;
  private final double alpha;
  private final double dropout;
  private final List<String> targetModules;
  private final NDManager manager;

  /** Keyed by module name, e.g. {@code model.layers.0.self_attn.q_proj}. */
  private final Map<String, NDArray> a = new LinkedHashMap<>();

  private final Map<String, NDArray> b = new LinkedHashMap<>();

  private LoraAdapter(
      int rank, double alpha, double dropout, List<String> targetModules, NDManager manager) {
    this.rank = rank;
    this.alpha = alpha;
    this.dropout = dropout;
    this.targetModules = List.copyOf(targetModules);
    this.manager = manager;
  }

  /**
   * A fresh adapter as PEFT initialises it: A ~ kaiming-uniform (bound 1/sqrt(in)), B = 0, so the
   * adapted model starts exactly equal to the base.
   */
  public static LoraAdapter create(
      LlamaModel model, int rank, double alpha, double dropout, List<String> targets, long seed) {
    for (String t : targets) {
      if (!LlamaModel.ATTENTION_MODULES.contains(t) && !LlamaModel.MLP_MODULES.contains(t)) {
        throw new BadInputException(
            "unknown LoRA target module '"
                + t
                + "'; use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj");
      }
    }
    LoraAdapter adapter =
        new LoraAdapter(rank, alpha, dropout, targets, model.manager().newSubManager());
    Random random = new Random(seed);
    for (int l = 0; l < model.config().numHiddenLayers(); l++) {
      for (String module : targets) {
        String name = LlamaModel.moduleName(l, module);
        Shape w = model.weights().get(name + ".weight").getShape();
        long out = w.get(0);
        long in = w.get(1);
        float bound = (float) (1.0 / Math.sqrt(in));
        float[] values = new float[Math.toIntExact(rank * in)];
        for (int i = 0; i < values.length; i++) {
          values[i] = (random.nextFloat() * 2 - 1) * bound;
        }
        adapter.a.put(name, adapter.manager.create(values, new Shape(rank, in)));
        adapter.b.put(name, adapter.manager.zeros(new Shape(out, rank)));
      }
    }
    return adapter;
  }

  public int rank() {
    return rank;
  }

  public double alpha() {
    return alpha;
  }

  public double dropout() {
    return dropout;
  }

  public double scaling() {
    return alpha / rank;
  }

  public List<String> targetModules() {
    return targetModules;
  }

  public boolean targets(String module) {
    return targetModules.contains(module);
  }

  public NDArray a(String moduleName) {
    return a.get(moduleName);
  }

  public NDArray b(String moduleName) {
    return b.get(moduleName);
  }

  /** All adapter arrays under their PEFT tensor names (lora_A before lora_B per module). */
  public Map<String, NDArray> peftTensors() {
    Map<String, NDArray> tensors = new LinkedHashMap<>();
    for (String module : a.keySet()) {
      tensors.put(PEFT_PREFIX + module + ".lora_A.weight", a.get(module));
      tensors.put(PEFT_PREFIX + module + ".lora_B.weight", b.get(module));
    }
    return tensors;
  }

  /** W + (alpha/r)·B·A for every targeted module, written into the model's base weights. */
  public void mergeInto(LlamaModel model) {
    for (String module : a.keySet()) {
      NDArray w = model.weights().get(module + ".weight");
      NDArray delta = b.get(module).matMul(a.get(module)).mul((float) scaling());
      w.addi(delta);
      delta.close();
    }
  }

  /**
   * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} as PEFT does, plus any
   * extra trained tensors (e.g. a classification head) under their PEFT names.
   */
  public void savePeft(
      Path dir, String baseModelNameOrPath, String taskType, Map<String, NDArray> extraTensors)
      throws IOException {
    Files.createDirectories(dir);
    Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
    peftTensors().forEach((n, t) -> tensors.put(n, LlamaModel.toFloatTensor(t)));
    extraTensors.forEach((n, t) -> tensors.put(n, LlamaModel.toFloatTensor(t)));
    Safetensors.writeFloats(dir.resolve("adapter_model.safetensors"), tensors);

    ObjectNode config = JSON.createObjectNode();
    config.put("peft_type", "LORA");
    config.put("task_type", taskType);
    config.put("base_model_name_or_path", baseModelNameOrPath);
    config.put("r", rank);
    config.put("lora_alpha", alpha);
    config.put("lora_dropout", dropout);
    ArrayNode modules = config.putArray("target_modules");
    targetModules.forEach(modules::add);
    config.put("bias", "none");
    config.put("fan_in_fan_out", false);
    config.put("inference_mode", true);
    config.put("init_lora_weights", true);
    config.put("use_rslora", false);
    config.put("use_dora", false);
    if (!extraTensors.isEmpty()) {
      ArrayNode save = config.putArray("modules_to_save");
      save.add("score");
    }
    Files.writeString(
        dir.resolve("adapter_config.json"),
        JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
  }

  /** Loads a PEFT adapter written by {@link #savePeft} (or by PEFT itself) for this model. */
  public static LoraAdapter loadPeft(Path dir, LlamaModel model) {
    try {
      JsonNode config = JSON.readTree(dir.resolve("adapter_config.json").toFile());
      if (!"LORA".equals(config.path("peft_type").asText())) {
        throw new BadInputException(dir + "/adapter_config.json: peft_type is not LORA");
      }
      if (!config.path("target_modules").isArray()) {
        throw new BadInputException(
            dir + "/adapter_config.json: target_modules must be a list of module names");
      }
      List<String> targets = new ArrayList<>();
      config.path("target_modules").forEach(n -> targets.add(n.asText()));
      for (String t : targets) {
        if (!LlamaModel.ATTENTION_MODULES.contains(t) && !LlamaModel.MLP_MODULES.contains(t)) {
          throw new BadInputException(
              dir
                  + "/adapter_config.json: LoRA on '"
                  + t
                  + "' is not supported; adapt q/k/v/o or"
                  + " gate/up/down projections");
        }
      }
      LoraAdapter adapter =
          new LoraAdapter(
              config.path("r").asInt(),
              config.path("lora_alpha").asDouble(),
              0.0,
              targets,
              model.manager().newSubManager());
      try (Safetensors.Reader reader = Safetensors.open(dir.resolve("adapter_model.safetensors"))) {
        for (int l = 0; l < model.config().numHiddenLayers(); l++) {
          for (String module : targets) {
            String name = LlamaModel.moduleName(l, module);
            adapter.a.put(name, read(reader, PEFT_PREFIX + name + ".lora_A.weight", adapter));
            adapter.b.put(name, read(reader, PEFT_PREFIX + name + ".lora_B.weight", adapter));
          }
        }
      }
      return adapter;
    } catch (IOException e) {
      throw new BadInputException("cannot read adapter in " + dir + ": " + e.getMessage(), e);
    }
  }

  private static NDArray read(Safetensors.Reader reader, String name, LoraAdapter adapter)
      throws IOException {
    if (!reader.tensors().containsKey(name)) {
      throw new BadInputException(reader.file() + " lacks tensor " + name);
    }
    return adapter.manager.create(reader.readFloats(name), new Shape(reader.info(name).shape()));
  }

  @Override
  public void close() {
    manager.close();
  }
}
