package io.kubetune.trainer.model;

import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Writes a randomly initialised Llama-layout model in Hugging Face format (config.json,
 * model.safetensors, tokenizer.json) from a seed, for tests, examples and benchmarks. The tokenizer
 * is always the tiny byte-level BPE of {@link ByteLevelBpeTokenizerJson}; the vocabulary of the
 * weights may be larger (a benchmark at a real model's shape pays for the real vocabulary-wide
 * logits while the tokenizer only produces ids below its own size). Initialisation follows
 * transformers: linear and embedding weights ~ N(0, 0.02), biases 0, RMSNorm weights 1.
 */
public final class TinyLlama {
  private TinyLlama() {}

  public record Size(int hidden, int layers, int heads, int kvHeads, int intermediate) {}

  public static final Size TEST_SIZE = new Size(32, 2, 4, 2, 64);

  /**
   * The {@code model_type}s written here: {@code llama}, and {@code qwen2} (biases on q_proj,
   * k_proj and v_proj, as Qwen2 and Qwen2.5 have). The first is the default.
   */
  public static final List<String> MODEL_TYPES = List.of("llama", "qwen2");

  /** The smallest vocabulary the weights may have: the tokenizer's. */
  public static int minVocabSize() {
    return ByteLevelBpeTokenizerJson.vocabSize();
  }

  public static LlamaConfig config(Size size, boolean tieEmbeddings) {
    return config(size, tieEmbeddings, MODEL_TYPES.get(0), minVocabSize());
  }

  /**
   * A config of {@code modelType} (one of {@link #MODEL_TYPES}) with {@code vocabSize} embedding
   * rows (at least {@link #minVocabSize()}); the special-token ids are the tiny tokenizer's.
   */
  public static LlamaConfig config(
      Size size, boolean tieEmbeddings, String modelType, int vocabSize) {
    if (!MODEL_TYPES.contains(modelType)) {
      throw new IllegalArgumentException(
          "model_type " + modelType + " is not one of " + MODEL_TYPES);
    }
    if (vocabSize < minVocabSize()) {
      throw new IllegalArgumentException(
          "vocabulary " + vocabSize + " is smaller than the tokenizer's " + minVocabSize());
    }
    return new LlamaConfig(
        modelType,
        vocabSize,
        size.hidden(),
        size.intermediate(),
        size.layers(),
        size.heads(),
        size.kvHeads(),
        size.hidden() / size.heads(),
        1024,
        1e-5,
        10000.0,
        tieEmbeddings,
        ByteLevelBpeTokenizerJson.idOf(ByteLevelBpeTokenizerJson.BOS),
        List.of(ByteLevelBpeTokenizerJson.idOf(ByteLevelBpeTokenizerJson.EOS)),
        null,
        false,
        modelType.equals("qwen2"),
        false,
        null,
        Set.of());
  }

  public static LlamaConfig write(Path dir, Size size, boolean tieEmbeddings, long seed)
      throws IOException {
    LlamaConfig config = config(size, tieEmbeddings);
    write(dir, config, seed);
    return config;
  }

  /**
   * Writes the model of {@code config} (from {@link #config}). Tensors are generated one at a time
   * while the file is written, so memory holds the largest tensor, not the model.
   */
  public static void write(Path dir, LlamaConfig config, long seed) throws IOException {
    Files.createDirectories(dir);
    // One generator drawn in file order (the writer asks for tensors in the order of the map), so
    // a seed gives the same weights as when all tensors were generated up front.
    Random random = new Random(seed);
    Map<String, long[]> shapes = LlamaModel.expectedShapes(config);
    Safetensors.writeFloats(
        dir.resolve("model.safetensors"),
        shapes,
        name -> values(name, shapes.get(name), random),
        Map.of("format", "pt"));
    config.write(dir.resolve("config.json"));
    ByteLevelBpeTokenizerJson.write(dir.resolve("tokenizer.json"));
  }

  private static float[] values(String name, long[] shape, Random random) {
    float[] values = new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
    if (name.endsWith("norm.weight")) {
      Arrays.fill(values, 1f);
    } else if (!name.endsWith(".bias")) {
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (random.nextGaussian() * 0.02);
      }
    }
    return values;
  }
}
