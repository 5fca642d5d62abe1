package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code LlamaForCausalLM} written functionally over name-keyed NDArrays, with the exact Hugging
 * Face tensor names. Holding weights in a map (instead of DJL Blocks) makes LoRA, layer freezing,
 * name-keyed optimizer state and safetensors export direct.
 *
 * <p>Every op takes an activation as its first operand, so intermediate results attach to the
 * caller's per-step manager, never to the long-lived weights' manager.
 */
public final class LlamaModel implements AutoCloseable {

  public static final String EMBED = "model.embed_tokens.weight";
  public static final String FINAL_NORM = "model.norm.weight";
  public static final String LM_HEAD = "lm_head.weight";

  /** {@code LlamaForSequenceClassification}'s head: (num_labels, hidden), no bias. */
  public static final String SCORE = "score.weight";

  /** Linear modules inside a decoder layer, by Hugging Face module name. */
  public static final List<String> ATTENTION_MODULES =
      List.of("q_proj", "k_proj", "v_proj", "o_proj");

  public static final List<String> MLP_MODULES = List.of("gate_proj", "up_proj", "down_proj");

  /**
   * Projections of the same input whose frozen weights {@link #fuseFrozenProjections} concatenates,
   * so that one matrix product replaces several.
   */
  static final List<List<String>> FUSABLE_GROUPS =
      List.of(List.of("q_proj", "k_proj", "v_proj"), List.of("gate_proj", "up_proj"));

  private static final ObjectMapper JSON = new ObjectMapper();

  private final LlamaConfig config;
  private final NDManager manager;
  private final Map<String, NDArray> weights;

  /** Fused frozen projections by the module name of the group's first member. */
  private final Map<String, Fused> fused;

  /**
   * Names of the base weights held in bf16 ({@link #convertFrozenToBf16}). DJL reports a bf16
   * array's type as UNKNOWN, so the model keeps track of them itself.
   */
  private final java.util.Set<String> bf16Weights;

  /** TorchScript modules compiled on first use, shared with the adapter views. */
  private final SharedKernels shared;

  private LoraAdapter adapter;
  private LoraKernels dropoutKernels;
  private double dropoutKernelsP;

  /**
   * The model's compiled modules, one set for the model and all its {@link #withAdapter} views (a
   * served model may load and drop many adapters over its life; each view compiling its own would
   * leave one more module in the model's manager every time).
   */
  private static final class SharedKernels {
    private LayerKernels layerKernels;
    private Bf16Ops bf16Ops;

    synchronized LayerKernels layerKernels(NDManager manager) {
      if (layerKernels == null) {
        layerKernels = LayerKernels.compile(manager);
      }
      return layerKernels;
    }

    synchronized Bf16Ops bf16Ops(NDManager manager) {
      if (bf16Ops == null) {
        bf16Ops = Bf16Ops.load(manager);
      }
      return bf16Ops;
    }
  }

  public LlamaModel(LlamaConfig config, NDManager manager, Map<String, NDArray> weights) {
    this(
        config,
        manager,
        weights,
        new java.util.concurrent.ConcurrentHashMap<>(),
        java.util.concurrent.ConcurrentHashMap.newKeySet(),
        new SharedKernels());
  }

  private LlamaModel(
      LlamaConfig config,
      NDManager manager,
      Map<String, NDArray> weights,
      Map<String, Fused> fused,
      java.util.Set<String> bf16Weights,
      SharedKernels shared) {
    this.config = config;
    this.manager = manager;
    this.weights = weights;
    this.fused = fused;
    this.bf16Weights = bf16Weights;
    this.shared = shared;
  }

  /**
   * Frozen weights of projections that read the same input, concatenated along the output axis, and
   * where each member's output starts and ends.
   */
  private record Fused(NDArray weight, NDArray bias, long[] splitPoints) {}

  public LlamaConfig config() {
    return config;
  }

  public NDManager manager() {
    return manager;
  }

  /** Base weights by Hugging Face name (the tied head is not a separate entry). */
  public Map<String, NDArray> weights() {
    return weights;
  }

  public LoraAdapter adapter() {
    return adapter;
  }

  public void setAdapter(LoraAdapter adapter) {
    this.adapter = adapter;
  }

  /**
   * The same base weights with another adapter (or none), for serving several adapters at once
   * without copying the base or switching a shared field under concurrent requests. The view shares
   * this model's manager: close only the original.
   */
  public LlamaModel withAdapter(LoraAdapter other) {
    LlamaModel view = new LlamaModel(config, manager, weights, fused, bf16Weights, shared);
    view.adapter = other;
    return view;
  }

  /**
   * Mixed precision: replaces every frozen matrix among the base weights (the projections, the
   * embedding and an untied head; not biases or norm weights, which are vectors) by a bf16 copy,
   * halving its memory. Products with a bf16 weight then run in bf16 with fp32 accumulation and
   * come back as fp32 ({@link Bf16Ops#linear}); an embedding lookup in a bf16 table comes back as
   * fp32 too, so every activation, norm, softmax and loss stays fp32. Trained weights are never
   * converted: they, their gradients and the optimizer's moments stay fp32. Call before {@link
   * #fuseFrozenProjections} (the fused arrays are then bf16 as well).
   *
   * @param trained whether a base weight (by name) is trained
   * @return the names converted
   */
  public java.util.Set<String> convertFrozenToBf16(java.util.function.Predicate<String> trained) {
    if (!fused.isEmpty()) {
      throw new IllegalStateException("convert to bf16 before fusing frozen projections");
    }
    for (Map.Entry<String, NDArray> e : weights.entrySet()) {
      NDArray weight = e.getValue();
      String name = e.getKey();
      if (weight.getShape().dimension() != 2 || trained.test(name) || bf16Weights.contains(name)) {
        continue;
      }
      NDArray half = bf16Ops().toBf16(weight);
      half.attach(manager);
      e.setValue(half);
      weight.close();
      bf16Weights.add(name);
    }
    return java.util.Collections.unmodifiableSet(bf16Weights);
  }

  /** Whether the base weight {@code name} is held in bf16 ({@link #convertFrozenToBf16}). */
  public boolean isBf16(String name) {
    return bf16Weights.contains(name);
  }

  /** Whether the output projection ({@link #lmHead}) is held in bf16. */
  public boolean lmHeadIsBf16() {
    return isBf16(config.tieWordEmbeddings() ? EMBED : LM_HEAD);
  }

  /** The bf16 casts and products of this model, compiled on first use. */
  public Bf16Ops bf16Ops() {
    return shared.bf16Ops(manager);
  }

  /**
   * Base weight {@code name} as an fp32 tensor for export: a bf16 weight is widened exactly (DJL's
   * own conversion cannot take a bf16 array, see {@link Bf16Ops}).
   */
  public Safetensors.FloatTensor floatTensor(String name) {
    NDArray weight = weights.get(name);
    if (!isBf16(name)) {
      return toFloatTensor(weight);
    }
    try (NDArray wide = bf16Ops().toFloat32(weight)) {
      return toFloatTensor(wide);
    }
  }

  /**
   * Concatenates the weights (and biases) of q/k/v and of gate/up in every layer where none of them
   * is trained, so the forward pass runs one matrix product per group instead of one per module,
   * and the backward pass one for the input gradient. The weight map then holds views into the
   * fused arrays (same values, no second copy), so exports and {@link LoraAdapter#mergeInto} still
   * see and change each module's own weight. Each output element is the same dot product as before.
   *
   * @param trained whether a base weight (by name) is trained; trained weights are never fused
   */
  public void fuseFrozenProjections(java.util.function.Predicate<String> trained) {
    for (int l = 0; l < config.numHiddenLayers(); l++) {
      for (List<String> group : FUSABLE_GROUPS) {
        String first = moduleName(l, group.get(0));
        if (fused.containsKey(first)) {
          continue;
        }
        List<String> names = new ArrayList<>();
        for (String module : group) {
          names.add(moduleName(l, module));
        }
        boolean hasBias = weights.containsKey(names.get(0) + ".bias");
        boolean anyTrained = false;
        for (String name : names) {
          anyTrained |= trained.test(name + ".weight");
          anyTrained |= hasBias && trained.test(name + ".bias");
        }
        if (anyTrained) {
          continue;
        }
        NDArray weight = concatAndView(names, ".weight");
        NDArray bias = hasBias ? concatAndView(names, ".bias") : null;
        long[] splitPoints = new long[names.size() - 1];
        long end = 0;
        for (int i = 0; i + 1 < names.size(); i++) {
          end += weights.get(names.get(i) + ".weight").getShape().get(0);
          splitPoints[i] = end;
        }
        fused.put(first, new Fused(weight, bias, splitPoints));
      }
    }
  }

  /**
   * One array holding {@code names}' tensors (suffix .weight or .bias) one after another along axis
   * 0; each name's entry becomes a view of its rows and the original is released.
   */
  private NDArray concatAndView(List<String> names, String suffix) {
    ai.djl.ndarray.NDList parts = new ai.djl.ndarray.NDList();
    for (String name : names) {
      parts.add(weights.get(name + suffix));
    }
    NDArray joined = ai.djl.ndarray.NDArrays.concat(parts, 0);
    joined.attach(manager);
    long start = 0;
    for (String name : names) {
      NDArray original = weights.get(name + suffix);
      long rows = original.getShape().get(0);
      NDArray view = joined.get(new NDIndex("{}:{}", start, start + rows));
      view.attach(manager);
      weights.put(name + suffix, view);
      original.close();
      start += rows;
    }
    return joined;
  }

  public static String layerPrefix(int layer) {
    return "model.layers." + layer + ".";
  }

  /** Full module name of a linear layer, e.g. {@code model.layers.0.self_attn.q_proj}. */
  public static String moduleName(int layer, String module) {
    String block = ATTENTION_MODULES.contains(module) ? "self_attn." : "mlp.";
    return layerPrefix(layer) + block + module;
  }

  /**
   * The names and shapes every checkpoint of this config must contain (biases and q/k norms as the
   * architecture and config.json declare them).
   */
  public static Map<String, long[]> expectedShapes(LlamaConfig c) {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    long h = c.hiddenSize();
    long q = (long) c.numAttentionHeads() * c.headDim();
    long kv = (long) c.numKeyValueHeads() * c.headDim();
    shapes.put(EMBED, new long[] {c.vocabSize(), h});
    for (int l = 0; l < c.numHiddenLayers(); l++) {
      String p = layerPrefix(l);
      shapes.put(p + "input_layernorm.weight", new long[] {h});
      shapes.put(p + "self_attn.q_proj.weight", new long[] {q, h});
      shapes.put(p + "self_attn.k_proj.weight", new long[] {kv, h});
      shapes.put(p + "self_attn.v_proj.weight", new long[] {kv, h});
      shapes.put(p + "self_attn.o_proj.weight", new long[] {h, q});
      if (c.attentionBias() || c.qkvBias()) {
        shapes.put(p + "self_attn.q_proj.bias", new long[] {q});
        shapes.put(p + "self_attn.k_proj.bias", new long[] {kv});
        shapes.put(p + "self_attn.v_proj.bias", new long[] {kv});
      }
      if (c.attentionBias()) {
        shapes.put(p + "self_attn.o_proj.bias", new long[] {h});
      }
      if (c.qkNorm()) {
        shapes.put(p + "self_attn.q_norm.weight", new long[] {c.headDim()});
        shapes.put(p + "self_attn.k_norm.weight", new long[] {c.headDim()});
      }
      shapes.put(p + "post_attention_layernorm.weight", new long[] {h});
      shapes.put(p + "mlp.gate_proj.weight", new long[] {c.intermediateSize(), h});
      shapes.put(p + "mlp.up_proj.weight", new long[] {c.intermediateSize(), h});
      shapes.put(p + "mlp.down_proj.weight", new long[] {h, c.intermediateSize()});
    }
    shapes.put(FINAL_NORM, new long[] {h});
    if (!c.tieWordEmbeddings()) {
      shapes.put(LM_HEAD, new long[] {c.vocabSize(), h});
    }
    return shapes;
  }

  /**
   * Tensors that may sit next to the model's weights and are not part of the decoder: a
   * classification head (read by the serving code) and rotary tables older checkpoints stored
   * (recomputed here from config.json).
   */
  private static boolean ignoredTensor(String name) {
    return name.equals(SCORE) || name.endsWith(".rotary_emb.inv_freq");
  }

  /**
   * Elements converted and copied per step while loading: the direct-memory staging is 16 MiB of
   * fp32 plus 8 MiB of file bytes, whatever the tensor's size, so a tensor larger than the
   * launcher's {@code -XX:MaxDirectMemorySize} loads.
   */
  static final int LOAD_CHUNK_ELEMENTS = 4 << 20;

  /**
   * How a checkpoint was loaded, for the trainer's {@code loaded} progress event.
   *
   * @param dtypes element types found in the files (F32, BF16, F16)
   */
  public record LoadReport(
      double seconds, long parameters, int tensors, int files, long bytes, List<String> dtypes) {
    /** The {@code loaded} event (see docs/trainer.md). */
    public TrainerEvent.Loaded event(LlamaConfig config) {
      return new TrainerEvent.Loaded(
          config.modelType(),
          parameters,
          (long) tensors,
          (long) files,
          bytes,
          dtypes,
          Math.round(seconds * 1000) / 1000.0);
    }
  }

  private LoadReport loadReport;

  /** How this model was loaded, or null when it was built in memory. */
  public LoadReport loadReport() {
    return loadReport;
  }

  /**
   * Loads {@code config.json} and {@code model.safetensors} (or the shards listed in {@code
   * model.safetensors.index.json}) from a Hugging Face model directory.
   *
   * <p>Tensors are read shard by shard in file order. Each one is allocated once as an fp32 native
   * tensor and filled {@link #LOAD_CHUNK_ELEMENTS} elements at a time through two reused direct
   * buffers, so neither the Java heap nor direct memory ever holds a whole tensor, and host memory
   * peaks at the model's fp32 size plus those buffers (the files go through the page cache).
   */
  public static LlamaModel load(Path dir, NDManager parent) {
    long started = System.nanoTime();
    LlamaConfig config = LlamaConfig.read(dir.resolve("config.json"));
    Map<String, Path> fileOf = tensorFiles(dir);
    Map<String, long[]> expected = expectedShapes(config);
    for (String name : expected.keySet()) {
      if (!fileOf.containsKey(name)) {
        throw new BadInputException(
            "model weights in "
                + dir
                + " lack tensor "
                + name
                + " (config.json model_type "
                + config.modelType()
                + " implies it; is this a checkpoint with Hugging Face names?)");
      }
    }
    if (config.tieWordEmbeddings() && fileOf.containsKey(LM_HEAD)) {
      requireTiedHeadEqualsEmbedding(fileOf.get(EMBED), fileOf.get(LM_HEAD), dir);
    }
    List<String> unexpected =
        fileOf.keySet().stream()
            .filter(n -> !expected.containsKey(n) && !ignoredTensor(n))
            .filter(n -> !(config.tieWordEmbeddings() && n.equals(LM_HEAD)))
            .sorted()
            .toList();
    if (!unexpected.isEmpty()) {
      throw new BadInputException(
          "model weights in "
              + dir
              + " hold tensors that config.json (model_type "
              + config.modelType()
              + ") does not describe, e.g. "
              + unexpected.subList(0, Math.min(5, unexpected.size()))
              + " ("
              + unexpected.size()
              + " in all); check attention_bias, tie_word_embeddings and model_type");
    }
    Map<Path, List<String>> byFile = new TreeMap<>();
    for (String name : expected.keySet()) {
      byFile.computeIfAbsent(fileOf.get(name), f -> new ArrayList<>()).add(name);
    }
    NDManager manager = parent.newSubManager();
    Map<String, NDArray> loaded = new LinkedHashMap<>();
    long bytes = 0;
    java.util.Set<String> dtypes = new java.util.TreeSet<>();
    ByteBuffer fileBytes = ByteBuffer.allocateDirect(2 * LOAD_CHUNK_ELEMENTS);
    ByteBuffer floats =
        ByteBuffer.allocateDirect(4 * LOAD_CHUNK_ELEMENTS).order(ByteOrder.nativeOrder());
    try {
      for (Map.Entry<Path, List<String>> file : byFile.entrySet()) {
        try (Safetensors.Reader reader = Safetensors.open(file.getKey())) {
          List<String> names = new ArrayList<>(file.getValue());
          names.sort(Comparator.comparingLong(n -> reader.info(n).begin()));
          for (String name : names) {
            Safetensors.TensorInfo info = reader.info(name);
            checkShape(reader, info, expected.get(name), config);
            loaded.put(name, readTensor(reader, info, manager, fileBytes, floats));
            bytes += info.end() - info.begin();
            dtypes.add(info.dtype().name());
          }
        }
      }
    } catch (IOException e) {
      manager.close();
      throw new BadInputException("cannot read model weights in " + dir + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
    Map<String, NDArray> weights = new LinkedHashMap<>();
    long parameters = 0;
    for (String name : expected.keySet()) {
      weights.put(name, loaded.get(name));
      parameters += loaded.get(name).size();
    }
    LlamaModel model = new LlamaModel(config, manager, weights);
    model.loadReport =
        new LoadReport(
            (System.nanoTime() - started) / 1e9,
            parameters,
            weights.size(),
            byFile.size(),
            bytes,
            List.copyOf(dtypes));
    return model;
  }

  /**
   * A tied model whose files also hold {@code lm_head.weight}: transformers ties the head to the
   * embedding when both hold the same values and otherwise unties them (with a warning). Equal
   * values are accepted (the head is the embedding); different ones are refused rather than guessed
   * at, naming {@code tie_word_embeddings}.
   */
  private static void requireTiedHeadEqualsEmbedding(Path embedFile, Path headFile, Path dir) {
    try (Safetensors.Reader embed = Safetensors.open(embedFile);
        Safetensors.Reader head = Safetensors.open(headFile)) {
      Safetensors.TensorInfo e = embed.info(EMBED);
      Safetensors.TensorInfo h = head.info(LM_HEAD);
      boolean equal = java.util.Arrays.equals(e.shape(), h.shape());
      if (equal) {
        ByteBuffer raw = ByteBuffer.allocateDirect(2 * LOAD_CHUNK_ELEMENTS);
        ByteBuffer a = ByteBuffer.allocateDirect(4 * LOAD_CHUNK_ELEMENTS);
        ByteBuffer b = ByteBuffer.allocateDirect(4 * LOAD_CHUNK_ELEMENTS);
        long total = e.elementCount();
        for (long first = 0; equal && first < total; first += LOAD_CHUNK_ELEMENTS) {
          int count = (int) Math.min(LOAD_CHUNK_ELEMENTS, total - first);
          embed.readFloats(EMBED, first, count, raw, a);
          head.readFloats(LM_HEAD, first, count, raw, b);
          equal = a.equals(b);
        }
      }
      if (!equal) {
        throw new BadInputException(
            "config.json in "
                + dir
                + " sets tie_word_embeddings true, but the weights hold an lm_head.weight that"
                + " differs from model.embed_tokens.weight; set tie_word_embeddings to false if"
                + " that head is meant, or remove it");
      }
    } catch (IOException ex) {
      throw new BadInputException(
          "cannot read model weights in " + dir + ": " + ex.getMessage(), ex);
    }
  }

  private static void checkShape(
      Safetensors.Reader reader, Safetensors.TensorInfo info, long[] shape, LlamaConfig config)
      throws IOException {
    if (!java.util.Arrays.equals(info.shape(), shape)) {
      throw new BadInputException(
          reader.file()
              + ": tensor "
              + info.name()
              + " has shape "
              + java.util.Arrays.toString(info.shape())
              + " but config.json implies "
              + java.util.Arrays.toString(shape));
    }
    switch (info.dtype()) {
      case F32, BF16, F16 -> {}
      default ->
          throw new BadInputException(
              reader.file()
                  + ": tensor "
                  + info.name()
                  + " has dtype "
                  + info.dtype()
                  + "; weights must be F32, BF16 or F16");
    }
  }

  /**
   * One tensor as an fp32 native array: allocated uninitialised once, then filled chunk by chunk.
   * Each chunk's NDArray wraps the reused direct buffer without a copy (DJL's {@code create} of a
   * direct ByteBuffer) and is copied into the target by {@code set}, then closed before the buffer
   * is refilled.
   */
  private static NDArray readTensor(
      Safetensors.Reader reader,
      Safetensors.TensorInfo info,
      NDManager manager,
      ByteBuffer fileBytes,
      ByteBuffer floats)
      throws IOException {
    long total = info.elementCount();
    try (NDManager scope = manager.newSubManager()) {
      NDArray flat = scope.create(new Shape(total), DataType.FLOAT32);
      for (long first = 0; first < total; first += LOAD_CHUNK_ELEMENTS) {
        int count = (int) Math.min(LOAD_CHUNK_ELEMENTS, total - first);
        reader.readFloats(info.name(), first, count, fileBytes, floats);
        try (NDArray chunk = scope.create(floats, new Shape(count), DataType.FLOAT32)) {
          flat.set(new NDIndex("{}:{}", first, first + count), chunk);
        }
      }
      NDArray shaped = flat.reshape(new Shape(info.shape()));
      shaped.attach(manager);
      return shaped;
    }
  }

  private static Map<String, Path> tensorFiles(Path dir) {
    Map<String, Path> fileOf = new TreeMap<>();
    Path single = dir.resolve("model.safetensors");
    Path index = dir.resolve("model.safetensors.index.json");
    try {
      if (Files.exists(single)) {
        try (Safetensors.Reader reader = Safetensors.open(single)) {
          reader.tensors().keySet().forEach(n -> fileOf.put(n, single));
        }
      } else if (Files.exists(index)) {
        JsonNode map = JSON.readTree(index.toFile()).path("weight_map");
        if (!map.isObject() || map.isEmpty()) {
          throw new BadInputException(
              index + ": field weight_map must be a non-empty object (tensor name to shard file)");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
          Map.Entry<String, JsonNode> e = it.next();
          Path shard = e.getValue().isTextual() ? dir.resolve(e.getValue().asText()) : null;
          if (shard == null || !shard.normalize().startsWith(dir.normalize())) {
            throw new BadInputException(
                index
                    + ": weight_map."
                    + e.getKey()
                    + " must name a shard file in "
                    + dir
                    + ", got "
                    + e.getValue());
          }
          if (!Files.isRegularFile(shard)) {
            throw new BadInputException(
                index
                    + " lists shard "
                    + e.getValue().asText()
                    + " (for "
                    + e.getKey()
                    + ") but "
                    + dir
                    + " has no such file; upload every shard of the model");
          }
          fileOf.put(e.getKey(), shard);
        }
      } else {
        throw new BadInputException(
            dir + " has neither model.safetensors nor model.safetensors.index.json");
      }
    } catch (IOException e) {
      throw new BadInputException("cannot read model weights in " + dir + ": " + e.getMessage(), e);
    }
    return fileOf;
  }

  /** The output projection: {@code lm_head.weight}, or the embedding when tied. */
  public NDArray lmHead() {
    return config.tieWordEmbeddings() ? weights.get(EMBED) : weights.get(LM_HEAD);
  }

  /**
   * Runs the decoder and returns the final-normed hidden states (batch, seq, hidden).
   *
   * @param inputIds int64 (batch, seq), created in the caller's step manager
   * @param cache keys/values of earlier positions for generation, or null
   * @param training enables LoRA dropout
   */
  public NDArray hiddenStates(NDArray inputIds, KvCache cache, boolean training) {
    NDManager scope = inputIds.getManager();
    int seq = (int) inputIds.getShape().get(1);
    int past = cache == null ? 0 : cache.length();
    NDArray x = embed(inputIds);
    Tables tables = tables(scope, past, seq);
    int[] seeds = dropoutSeeds(scope, training);
    for (int l = 0; l < config.numHiddenLayers(); l++) {
      // Each layer's intermediates live in a scope of their own, closed when the layer is done:
      // closing an array only drops DJL's handle, and libtorch keeps whatever autograd saved for
      // the backward pass, so the rest (about half of a layer's activations) is freed at once
      // instead of at the end of the step.
      try (NDManager layerScope = scope.newSubManager()) {
        x.attach(layerScope);
        seedDropout(seeds, l);
        x = decoderLayer(x, l, cache, training, tables.at(l));
        x.attach(scope);
      }
    }
    if (cache != null) {
      cache.advance(seq);
    }
    return rmsNorm(x, weights.get(FINAL_NORM), tables.eps());
  }

  /**
   * One training pass with activation recomputation (gradient checkpointing): the decoder runs once
   * without recording anything for autograd, keeping only each layer's input; the loss is computed
   * and differentiated from the last layer's output; then, from the top layer down, each layer runs
   * again from its saved input with autograd on and is differentiated with the gradient of its
   * output ({@code sum(output * gradient)} has exactly that gradient), which yields the gradient of
   * its input for the layer below. So at most one layer's autograd graph exists at a time, at the
   * price of a second forward pass. Dropout masks are reproduced by reseeding each layer (as {@link
   * #hiddenStates} does), so the gradients are those of the plain pass.
   *
   * @param inputIds int64 (batch, seq), created in the step's manager
   * @param lossOfHidden the objective of the final-normed hidden states
   * @param collector the active gradient collector; gradients accumulate into the trained arrays
   * @return the loss (already differentiated)
   */
  public NDArray backwardWithRecomputation(
      NDArray inputIds,
      java.util.function.Function<NDArray, NDArray> lossOfHidden,
      ai.djl.training.GradientCollector collector) {
    NDManager scope = inputIds.getManager();
    int seq = (int) inputIds.getShape().get(1);
    int layers = config.numHiddenLayers();
    Tables tables = tables(scope, 0, seq);
    int[] seeds = dropoutSeeds(scope, true);
    NDArray embedded = embed(inputIds);
    NDArray[] inputs = new NDArray[layers + 1];
    inputs[0] = embedded.stopGradient();
    boolean gradMode = ai.djl.pytorch.jni.JniUtils.isGradMode();
    ai.djl.pytorch.jni.JniUtils.setGradMode(false);
    try {
      for (int l = 0; l < layers; l++) {
        try (NDManager layerScope = scope.newSubManager()) {
          NDArray in = inputs[l].stopGradient();
          in.attach(layerScope);
          seedDropout(seeds, l);
          NDArray out = decoderLayer(in, l, null, true, tables.at(l));
          out.attach(scope);
          inputs[l + 1] = out;
        }
      }
    } finally {
      ai.djl.pytorch.jni.JniUtils.setGradMode(gradMode);
    }
    NDArray last = inputs[layers];
    last.setRequiresGradient(true);
    NDArray loss = lossOfHidden.apply(rmsNorm(last, weights.get(FINAL_NORM), tables.eps()));
    collector.backward(loss);
    NDArray gradient = last.getGradient();
    gradient.attach(scope);
    for (int l = layers - 1; l >= 0; l--) {
      try (NDManager layerScope = scope.newSubManager()) {
        NDArray in = inputs[l].stopGradient();
        in.attach(layerScope);
        in.setRequiresGradient(true);
        seedDropout(seeds, l);
        NDArray out = decoderLayer(in, l, null, true, tables.at(l));
        collector.backward(out.mul(gradient).sum());
        gradient = in.getGradient();
        gradient.attach(scope);
      }
    }
    if (weights.get(EMBED).hasGradient()) {
      collector.backward(embedded.mul(gradient).sum());
    }
    return loss;
  }

  private NDArray embed(NDArray inputIds) {
    NDArray embedded =
        inputIds
            .getNDArrayInternal()
            .embedding(inputIds, weights.get(EMBED), SparseFormat.DENSE)
            .singletonOrThrow();
    // Rows of a bf16 table widen exactly to fp32: the layers run on fp32 activations.
    return isBf16(EMBED) ? bf16Ops().toFloat32(embedded) : embedded;
  }

  /**
   * One engine seed per layer when LoRA dropout is on in training, drawn from the engine's
   * generator (itself seeded per step by the training loop), else null. Each layer reseeds before
   * it runs, so a layer's masks do not depend on what ran before it and a recomputation draws the
   * same ones.
   */
  private int[] dropoutSeeds(NDManager scope, boolean training) {
    if (!training || adapter == null || adapter.dropout() <= 0) {
      return null;
    }
    try (NDArray drawn =
        scope.randomInteger(
            0, Integer.MAX_VALUE, new Shape(config.numHiddenLayers()), DataType.INT32)) {
      return drawn.toIntArray();
    }
  }

  private static void seedDropout(int[] seeds, int layer) {
    if (seeds != null) {
      ai.djl.engine.Engine.getInstance().setRandomSeed(seeds[layer]);
    }
  }

  /**
   * Arrays one forward pass shares across layers, in the step's scope: rotary tables, the causal
   * and sliding-window masks, 1/sqrt(head_dim) and the RMSNorm epsilon. Arrays made from Java
   * memory enter the autograd graph and must outlive the backward pass (see scalar()).
   */
  private record Tables(
      NDArray[] rope,
      NDArray mask,
      NDArray slidingMask,
      NDArray scale,
      NDArray eps,
      NDManager step,
      LlamaConfig config) {
    Constants at(int layer) {
      return new Constants(
          rope, config.slidingWindowAt(layer) ? slidingMask : mask, scale, eps, step);
    }
  }

  private Tables tables(NDManager scope, int past, int seq) {
    return new Tables(
        ropeTables(scope, past, seq),
        causalMask(scope, past, seq, null),
        config.slidingWindow() == null
            ? null
            : causalMask(scope, past, seq, config.slidingWindow()),
        scalar(scope, 1.0 / Math.sqrt(config.headDim())),
        scalar(scope, config.rmsNormEps()),
        scope,
        config);
  }

  /**
   * What one layer uses, all in the step's scope: rotary tables, the layer's additive mask,
   * 1/sqrt(head_dim), the RMSNorm epsilon, and that scope for LoRA scalings.
   */
  private record Constants(
      NDArray[] rope, NDArray mask, NDArray scale, NDArray eps, NDManager step) {}

  /** One decoder layer: x + attention(norm(x)), then + mlp(norm(.)). */
  private NDArray decoderLayer(NDArray x, int l, KvCache cache, boolean training, Constants c) {
    long batch = x.getShape().get(0);
    int seq = (int) x.getShape().get(1);
    int heads = config.numAttentionHeads();
    int kvHeads = config.numKeyValueHeads();
    int headDim = config.headDim();
    String p = layerPrefix(l);
    NDArray n = rmsNorm(x, weights.get(p + "input_layernorm.weight"), c.eps());
    NDArray[] qkv = linears(n, l, FUSABLE_GROUPS.get(0), training, c);
    NDArray q = heads(qkv[0], batch, seq, heads, headDim);
    NDArray k = heads(qkv[1], batch, seq, kvHeads, headDim);
    NDArray v = heads(qkv[2], batch, seq, kvHeads, headDim);
    if (config.qkNorm()) {
      // Qwen3: RMSNorm over each head's head_dim values, before the rotation.
      q = rmsNorm(q, weights.get(p + "self_attn.q_norm.weight"), c.eps());
      k = rmsNorm(k, weights.get(p + "self_attn.k_norm.weight"), c.eps());
    }
    q = applyRope(q, c.rope());
    k = applyRope(k, c.rope());
    if (cache != null) {
      NDArray[] kv = cache.append(l, k, v);
      k = kv[0];
      v = kv[1];
    }
    k = repeatKv(k, heads / kvHeads);
    v = repeatKv(v, heads / kvHeads);
    NDArray context;
    if (cache == null && !config.slidingWindowAt(l)) {
      // A whole sequence under the plain causal mask: the fused kernel.
      context = layerKernels().causalAttention(q, k, v);
    } else {
      NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).mul(c.scale()).add(c.mask());
      context = scores.softmax(3).matMul(v);
    }
    NDArray attention = context.transpose(0, 2, 1, 3).reshape(batch, seq, heads * headDim);
    x = x.add(linear(attention, l, "o_proj", training, c));

    NDArray n2 = rmsNorm(x, weights.get(p + "post_attention_layernorm.weight"), c.eps());
    List<String> gateUpModules = FUSABLE_GROUPS.get(1);
    NDArray act;
    if (fused.containsKey(moduleName(l, gateUpModules.get(0)))) {
      // Frozen gate/up fused: the activation reads their packed output, gate first. When both
      // products run in bf16 the activation stays bf16 between them (see keepBf16 below).
      boolean keepBf16 =
          isBf16(moduleName(l, gateUpModules.get(0)) + ".weight")
              && isBf16(moduleName(l, "down_proj") + ".weight");
      act = layerKernels().swiGluPacked(fusedLinears(n2, l, gateUpModules, keepBf16, training, c));
    } else {
      NDArray[] gateUp = linears(n2, l, gateUpModules, training, c);
      act = layerKernels().swiGlu(gateUp[0], gateUp[1]);
    }
    return x.add(linear(act, l, "down_proj", training, c));
  }

  /** Vocabulary logits (batch, seq, vocab) of final hidden states. */
  public NDArray logits(NDArray hidden) {
    return project(hidden, lmHead(), null, lmHeadIsBf16());
  }

  /**
   * The projections {@code modules} of the same input: one product with their fused weights split
   * into each module's output when they were fused, else one per module; each with its adapter.
   */
  private NDArray[] linears(
      NDArray x, int layer, List<String> modules, boolean training, Constants c) {
    NDArray[] out = new NDArray[modules.size()];
    Fused f = fused.get(moduleName(layer, modules.get(0)));
    if (f == null) {
      for (int i = 0; i < out.length; i++) {
        out[i] = linear(x, layer, modules.get(i), training, c);
      }
      return out;
    }
    NDArray y = fusedLinears(x, layer, modules, false, training, c);
    ai.djl.ndarray.NDList parts = y.split(f.splitPoints(), y.getShape().dimension() - 1);
    for (int i = 0; i < out.length; i++) {
      out[i] = parts.get(i);
    }
    return out;
  }

  /**
   * The projections {@code modules} of x, fused (see {@link #fuseFrozenProjections}), with their
   * adapters: their outputs side by side in module order, shaped like x with the last axis the sum
   * of their widths.
   */
  private NDArray fusedLinears(
      NDArray x, int layer, List<String> modules, boolean keepBf16, boolean training, Constants c) {
    Fused f = fused.get(moduleName(layer, modules.get(0)));
    boolean bf16 = isBf16(moduleName(layer, modules.get(0)) + ".weight");
    return withAdapters(x, f.weight(), f.bias(), bf16, keepBf16, layer, modules, training, c);
  }

  /** Base projection plus, when an adapter targets this module, scaling·B·A·dropout(x). */
  private NDArray linear(NDArray x, int layer, String module, boolean training, Constants c) {
    String name = moduleName(layer, module);
    return withAdapters(
        x,
        weights.get(name + ".weight"),
        weights.get(name + ".bias"),
        isBf16(name + ".weight"),
        false,
        layer,
        List.of(module),
        training,
        c);
  }

  /** The output width of {@code module} in {@code layer}. */
  private long outFeatures(int layer, String module) {
    return weights.get(moduleName(layer, module) + ".weight").getShape().get(0);
  }

  /** x (..., in) as a (rows, in) view. */
  private static NDArray rows(NDArray x) {
    return x.reshape(-1, x.getShape().get(x.getShape().dimension() - 1));
  }

  /** {@code x W^T + b}; in bf16 with fp32 accumulation when W is bf16 (the bias stays fp32). */
  private NDArray project(NDArray x, NDArray weight, NDArray bias, boolean bf16) {
    if (!bf16) {
      return x.getNDArrayInternal().linear(x, weight, bias).singletonOrThrow();
    }
    NDArray y = bf16Ops().linear(x, weight);
    return bias == null ? y : y.add(bias);
  }

  /**
   * The base projections of x by {@code modules} side by side ({@code x W^T + b}, W their weight,
   * fused or not), plus each targeted module's scaling·B·A·dropout(x), shaped like x with the last
   * axis the sum of their widths. The rank-r activations of the whole group come from one call:
   * without dropout one product ({@link LayerKernels#downProjections}), with it {@link
   * LoraKernels#downProjections}, where each member draws its own dropout mask, as PEFT does (one
   * call per member when their ranks differ). The up-projections are added into the base output in
   * place by one product (see {@link LayerKernels#addUpProjections}).
   *
   * <p>With a bf16 W the adapters' products run in bf16 as well, as under torch.autocast: they read
   * the same bf16 copy of x as the base product, meet bf16 copies of A and B (fp32 accumulation
   * inside each GEMM) and add into the base product's bf16 output, which is widened to fp32 once,
   * after them. A and B themselves, their gradients and AdamW's state stay fp32. Products with
   * rank-r operands read and write mostly their wide operand, so halving its bytes roughly halves
   * their time; and x is cast once for the group, its gradient widened once. A bf16 x is used as it
   * is.
   *
   * <p>With {@code keepBf16}, a bf16 W and no bias the result is the bf16 output itself, not
   * widened: for a consumer that rounds it to bf16 anyway (the gated activation between the gate/up
   * and the down products), which saves a full-width cast each way and halves what autograd keeps.
   */
  private NDArray withAdapters(
      NDArray x,
      NDArray weight,
      NDArray bias,
      boolean bf16,
      boolean keepBf16,
      int layer,
      List<String> modules,
      boolean training,
      Constants c) {
    boolean adapted = adapter != null && modules.stream().anyMatch(adapter::targets);
    boolean bf16Result = bf16 && keepBf16 && bias == null;
    NDArray y;
    if (bf16 && (adapted || bf16Result)) {
      NDArray half = bf16Ops().toBf16(rows(x));
      y = half.getNDArrayInternal().linear(half, weight, null).singletonOrThrow();
      if (adapted) {
        y = addAdapters(half, y, layer, modules, training, c);
      }
      if (!bf16Result) {
        y = bf16Ops().toFloat32(y);
        if (bias != null) {
          y = y.add(bias);
        }
      }
    } else {
      y = project(rows(x), weight, bias, bf16);
      if (adapted) {
        y = addAdapters(rows(x), y, layer, modules, training, c);
      }
    }
    // A copy: Shape.getShape() hands out the shape's own array.
    long[] shape = x.getShape().getShape().clone();
    shape[shape.length - 1] = y.getShape().get(1);
    return y.reshape(new Shape(shape));
  }

  /**
   * {@code y (rows, out)}, the base projections of {@code x (rows, in)}, plus the adapters' terms
   * (see {@link #withAdapters}), in y's dtype (fp32, or bf16 with a bf16 x).
   */
  private NDArray addAdapters(
      NDArray x, NDArray y, int layer, List<String> modules, boolean training, Constants c) {
    boolean dropout = training && adapter.dropout() > 0;
    // Kept inputs are not rescaled by 1/(1-p) (see LoraKernels): the rank-r activations are.
    double keptScale = dropout ? 1 / (1 - adapter.dropout()) : 1;
    List<NDArray> downs = new ArrayList<>(modules.size());
    List<Double> scalings = new ArrayList<>(modules.size());
    List<NDArray> upTransposed = new ArrayList<>(modules.size());
    NDManager scope = x.getManager();
    for (String module : modules) {
      String name = moduleName(layer, module);
      NDArray bt;
      if (adapter.targets(module)) {
        // Views of the adapter's A and B with handles of this layer's own: the calls rename them.
        NDArray a = adapter.a(name).reshape(adapter.a(name).getShape());
        a.attach(scope);
        downs.add(a);
        for (long i = a.getShape().get(0); i > 0; i--) {
          scalings.add(adapter.scaling(name) * keptScale);
        }
        bt = adapter.b(name).transpose();
      } else {
        bt = scope.zeros(new Shape(0, outFeatures(layer, module)));
      }
      bt.attach(scope);
      upTransposed.add(bt);
    }
    List<NDArray> activations = new ArrayList<>(modules.size());
    if (!dropout) {
      activations.add(layerKernels().downProjections(x, downs, scalingArray(c.step(), scalings)));
    } else if (downs.stream().map(a -> a.getShape().get(0)).distinct().count() == 1) {
      activations.add(dropoutKernels().downProjections(x, downs, scalingArray(c.step(), scalings)));
    } else {
      // Members of different ranks (a rank pattern): one call each, each with its own mask.
      int column = 0;
      for (NDArray a : downs) {
        int rank = (int) a.getShape().get(0);
        List<Double> own = scalings.subList(column, column + rank);
        activations.add(
            dropoutKernels().downProjections(x, List.of(a), scalingArray(c.step(), own)));
        column += rank;
      }
    }
    return layerKernels().addUpProjections(activations, upTransposed, y);
  }

  /** One scalar when all ranks' scalings are equal (the usual case), else one per rank column. */
  private static NDArray scalingArray(NDManager step, List<Double> scalings) {
    if (scalings.stream().distinct().count() == 1) {
      return scalar(step, scalings.get(0));
    }
    float[] values = new float[scalings.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = scalings.get(i).floatValue();
    }
    return step.create(values);
  }

  /** The layer's kernels, compiled on first use. */
  private LayerKernels layerKernels() {
    return shared.layerKernels(manager);
  }

  /** The dropout kernels for the adapter's dropout probability, compiled on first use. */
  private LoraKernels dropoutKernels() {
    if (dropoutKernels == null || dropoutKernelsP != adapter.dropout()) {
      if (dropoutKernels != null) {
        dropoutKernels.close();
      }
      dropoutKernels = LoraKernels.compile(manager, adapter.dropout());
      dropoutKernelsP = adapter.dropout();
    }
    return dropoutKernels;
  }

  /**
   * A scalar owned by the step's manager. DJL's {@code x.mul(2f)} wraps the number in a temporary
   * array backed by a direct buffer and closes it at once; autograd keeps that tensor for the
   * backward pass, so a garbage collection in between lets backward read freed memory (seen as
   * sporadic NaN/Inf gradients). Scalars that enter the autograd graph must outlive the step.
   */
  public static NDArray scalar(NDManager scope, double value) {
    return scope.create((float) value);
  }

  private static NDArray heads(NDArray x, long batch, int seq, int count, int headDim) {
    return x.reshape(batch, seq, count, headDim).transpose(0, 2, 1, 3);
  }

  private static NDArray repeatKv(NDArray kv, int repeats) {
    if (repeats == 1) {
      return kv;
    }
    Shape s = kv.getShape();
    // Query head h uses key/value head h / repeats, as in transformers' repeat_kv.
    return kv.expandDims(2)
        .broadcast(new Shape(s.get(0), s.get(1), repeats, s.get(2), s.get(3)))
        .reshape(s.get(0), s.get(1) * repeats, s.get(2), s.get(3));
  }

  private NDArray rmsNorm(NDArray x, NDArray weight, NDArray eps) {
    return layerKernels().rmsNorm(x, weight, eps);
  }

  /** cos and sin tables (1, 1, seq, headDim) for positions past..past+seq-1. */
  private NDArray[] ropeTables(NDManager scope, int past, int seq) {
    int dim = config.headDim();
    int half = dim / 2;
    float[] cos = new float[seq * dim];
    float[] sin = new float[seq * dim];
    for (int t = 0; t < seq; t++) {
      for (int i = 0; i < half; i++) {
        double invFreq = 1.0 / Math.pow(config.ropeTheta(), (2.0 * i) / dim);
        if (config.ropeScaling() != null) {
          invFreq = config.ropeScaling().scale(invFreq);
        }
        double angle = (past + t) * invFreq;
        cos[t * dim + i] = cos[t * dim + i + half] = (float) Math.cos(angle);
        sin[t * dim + i] = sin[t * dim + i + half] = (float) Math.sin(angle);
      }
    }
    Shape shape = new Shape(1, 1, seq, dim);
    return new NDArray[] {scope.create(cos, shape), scope.create(sin, shape)};
  }

  /** q·cos + rotate_half(q)·sin, rotate_half(x) = cat(-x2, x1) as in transformers. */
  private NDArray applyRope(NDArray x, NDArray[] rope) {
    return layerKernels().rotary(x, rope[0], rope[1]);
  }

  /**
   * Additive mask (seq, past+seq): query t sees keys up to position past+t and, with a sliding
   * window w, only those after past+t-w (transformers' {@code sliding_window_overlay}).
   */
  private static NDArray causalMask(NDManager scope, int past, int seq, Integer window) {
    int total = past + seq;
    float[] mask = new float[seq * total];
    for (int t = 0; t < seq; t++) {
      int position = past + t;
      for (int j = 0; j < total; j++) {
        boolean visible = j <= position && (window == null || j > position - window);
        if (!visible) {
          mask[t * total + j] = -1e9f;
        }
      }
    }
    return scope.create(mask, new Shape(seq, total));
  }

  /** Token ids as an int64 (batch, seq) array in the given manager. */
  public static NDArray ids(NDManager scope, long[][] rows) {
    int seq = rows[0].length;
    long[] flat = new long[rows.length * seq];
    for (int b = 0; b < rows.length; b++) {
      System.arraycopy(rows[b], 0, flat, b * seq, seq);
    }
    return scope.create(flat, new Shape(rows.length, seq));
  }

  /** Writes the base weights as {@code model.safetensors} (+ config.json) in HF layout. */
  public void saveHuggingFace(Path dir) throws IOException {
    Files.createDirectories(dir);
    Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
    for (String name : weights.keySet()) {
      tensors.put(name, floatTensor(name));
    }
    Safetensors.writeFloats(dir.resolve("model.safetensors"), tensors);
    config.write(dir.resolve("config.json"));
  }

  /** An fp32 (or fp16) array as an fp32 tensor; for a base weight use {@link #floatTensor}. */
  public static Safetensors.FloatTensor toFloatTensor(NDArray array) {
    return new Safetensors.FloatTensor(
        array.getShape().getShape(), array.toType(DataType.FLOAT32, false).toFloatArray());
  }

  /** Names of the base weights belonging to the top {@code count} decoder layers. */
  public List<String> topLayerWeights(int count) {
    List<String> names = new ArrayList<>();
    for (String name : weights.keySet()) {
      if (name.startsWith("model.layers.")) {
        int layer = Integer.parseInt(name.split("\\.")[2]);
        if (layer >= config.numHiddenLayers() - count) {
          names.add(name);
        }
      }
    }
    return names;
  }

  @Override
  public void close() {
    manager.close();
  }
}
