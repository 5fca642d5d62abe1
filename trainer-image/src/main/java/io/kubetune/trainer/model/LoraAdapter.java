package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A LoRA adapter: for each targeted linear module W (out, in), A (r, in) and B (out, r), and the
 * forward pass adds scaling·B·A·x with scaling = alpha/r (alpha/sqrt(r) with rsLoRA; r and alpha
 * per module with PEFT's rank_pattern/alpha_pattern). Saved and loaded in PEFT's layout.
 */
public final class LoraAdapter implements AutoCloseable {

  /** PEFT prefixes module names with the PeftModel and LlamaForCausalLM wrappers. */
  public static final String PEFT_PREFIX = "base_model.model.";

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Rank, alpha, scaling rule and per-module patterns: one source for forward pass and export. */
  private final PeftLoraConfig config;

  private final double dropout;
  private final NDManager manager;

  /** Keyed by module name, e.g. {@code model.layers.0.self_attn.q_proj}. */
  private final Map<String, NDArray> a = new LinkedHashMap<>();

  private final Map<String, NDArray> b = new LinkedHashMap<>();

  private final Map<String, Double> scalings = new ConcurrentHashMap<>();

  private LoraAdapter(PeftLoraConfig config, double dropout, NDManager manager) {
    this.config = config;
    this.dropout = dropout;
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
    PeftLoraConfig config =
        new PeftLoraConfig(
            "CAUSAL_LM", rank, alpha, false, List.copyOf(targets), Map.of(), Map.of());
    LoraAdapter adapter = new LoraAdapter(config, dropout, model.manager().newSubManager());
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

  /** The rank of modules that no {@code rank_pattern} entry matches. */
  public int rank() {
    return config.rank();
  }

  public double alpha() {
    return config.alpha();
  }

  public double dropout() {
    return dropout;
  }

  /** The scaling of modules that no pattern matches; see {@link #scaling(String)}. */
  public double scaling() {
    return config.useRslora() ? config.alpha() / Math.sqrt(config.rank()) : config.alpha() / rank();
  }

  /**
   * The factor of B·A·x for one module, e.g. {@code model.layers.0.self_attn.q_proj}: alpha/r, or
   * alpha/sqrt(r) with rsLoRA, with the module's own rank and alpha from the patterns.
   */
  public double scaling(String moduleName) {
    // Cached: the forward pass asks per module and step, the patterns are regular expressions.
    return scalings.computeIfAbsent(moduleName, config::scaling);
  }

  public PeftLoraConfig config() {
    return config;
  }

  public List<String> targetModules() {
    return config.targetModules();
  }

  public boolean targets(String module) {
    return config.targetModules().contains(module);
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
      NDArray delta = b.get(module).matMul(a.get(module)).mul((float) scaling(module));
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
    savePeft(dir, baseModelNameOrPath, taskType, extraTensors, null);
  }

  /**
   * As {@link #savePeft(Path, String, String, Map)}, with the project's record of the base (its
   * storage URI and digest, see docs/trainer.md) under the key {@code kubetune}; PEFT ignores keys
   * it does not know (with a warning).
   */
  public void savePeft(
      Path dir,
      String baseModelNameOrPath,
      String taskType,
      Map<String, NDArray> extraTensors,
      ObjectNode kubetune)
      throws IOException {
    Files.createDirectories(dir);
    Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
    peftTensors().forEach((n, t) -> tensors.put(n, LlamaModel.toFloatTensor(t)));
    extraTensors.forEach((n, t) -> tensors.put(n, LlamaModel.toFloatTensor(t)));
    Safetensors.writeFloats(dir.resolve("adapter_model.safetensors"), tensors);

    ObjectNode json = JSON.createObjectNode();
    json.put("peft_type", "LORA");
    json.put("task_type", taskType);
    json.put("base_model_name_or_path", baseModelNameOrPath);
    json.put("r", config.rank());
    json.put("lora_alpha", config.alpha());
    json.put("lora_dropout", dropout);
    ArrayNode modules = json.putArray("target_modules");
    config.targetModules().forEach(modules::add);
    json.put("bias", "none");
    json.put("fan_in_fan_out", false);
    json.put("inference_mode", true);
    json.put("init_lora_weights", true);
    json.put("use_rslora", config.useRslora());
    json.put("use_dora", false);
    ObjectNode ranks = json.putObject("rank_pattern");
    config.rankPattern().forEach(ranks::put);
    ObjectNode alphas = json.putObject("alpha_pattern");
    config.alphaPattern().forEach(alphas::put);
    if (!extraTensors.isEmpty()) {
      ArrayNode save = json.putArray("modules_to_save");
      save.add("score");
    }
    if (kubetune != null) {
      json.set("kubetune", kubetune);
    }
    Files.writeString(
        dir.resolve("adapter_config.json"),
        JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));
  }

  /**
   * Loads a PEFT adapter written by {@link #savePeft} or by PEFT itself for this model: plain LoRA,
   * rsLoRA and per-module {@code rank_pattern}/{@code alpha_pattern}. Any other PEFT feature is
   * refused with the field named ({@link PeftLoraConfig#parse}), and every tensor must have the
   * shape the base and the module's rank imply.
   */
  public static LoraAdapter loadPeft(Path dir, LlamaModel model) {
    Path configFile = dir.resolve("adapter_config.json");
    try {
      PeftLoraConfig config =
          PeftLoraConfig.parse(JSON.readTree(configFile.toFile()), configFile.toString());
      LoraAdapter adapter = new LoraAdapter(config, 0.0, model.manager().newSubManager());
      try (Safetensors.Reader reader = Safetensors.open(dir.resolve("adapter_model.safetensors"))) {
        for (int l = 0; l < model.config().numHiddenLayers(); l++) {
          for (String module : config.targetModules()) {
            String name = LlamaModel.moduleName(l, module);
            long[] weight = model.weights().get(name + ".weight").getShape().getShape();
            int rank = config.rank(name);
            adapter.a.put(
                name,
                read(
                    reader,
                    PEFT_PREFIX + name + ".lora_A.weight",
                    new long[] {rank, weight[1]},
                    adapter));
            adapter.b.put(
                name,
                read(
                    reader,
                    PEFT_PREFIX + name + ".lora_B.weight",
                    new long[] {weight[0], rank},
                    adapter));
          }
        }
      } catch (RuntimeException e) {
        adapter.close();
        throw e;
      }
      return adapter;
    } catch (IOException e) {
      throw new BadInputException("cannot read adapter in " + dir + ": " + e.getMessage(), e);
    }
  }

  private static NDArray read(
      Safetensors.Reader reader, String name, long[] expectedShape, LoraAdapter adapter)
      throws IOException {
    if (!reader.tensors().containsKey(name)) {
      throw new BadInputException(reader.file() + " lacks tensor " + name);
    }
    long[] shape = reader.info(name).shape();
    if (!java.util.Arrays.equals(shape, expectedShape)) {
      throw new BadInputException(
          reader.file()
              + ": tensor "
              + name
              + " has shape "
              + java.util.Arrays.toString(shape)
              + " but this base with the adapter's rank for the module needs "
              + java.util.Arrays.toString(expectedShape));
    }
    return adapter.manager.create(reader.readFloats(name), new Shape(shape));
  }

  @Override
  public void close() {
    manager.close();
  }
}
