package io.kubetune.trainer.model;

import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Writes a small randomly initialised Llama model in Hugging Face format (config.json,
 * model.safetensors, tokenizer.json) from a seed, for tests and examples. Initialisation follows
 * transformers: linear and embedding weights ~ N(0, 0.02), RMSNorm weights 1.
 */
public final class TinyLlama {
  private TinyLlama() {}

  public record Size(int hidden, int layers, int heads, int kvHeads, int intermediate) {}

  public static final Size TEST_SIZE = new Size(32, 2, 4, 2, 64);

  public static LlamaConfig config(Size size, boolean tieEmbeddings) {
    return new LlamaConfig(
        "llama",
        ByteLevelBpeTokenizerJson.vocabSize(),
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
        java.util.List.of(ByteLevelBpeTokenizerJson.idOf(ByteLevelBpeTokenizerJson.EOS)),
        null,
        false,
        false,
        false,
        null,
        java.util.Set.of());
  }

  public static LlamaConfig write(Path dir, Size size, boolean tieEmbeddings, long seed)
      throws IOException {
    LlamaConfig config = config(size, tieEmbeddings);
    Files.createDirectories(dir);
    Random random = new Random(seed);
    Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : LlamaModel.expectedShapes(config).entrySet()) {
      long[] shape = e.getValue();
      float[] values =
          new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
      if (e.getKey().endsWith("norm.weight")) {
        java.util.Arrays.fill(values, 1f);
      } else {
        for (int i = 0; i < values.length; i++) {
          values[i] = (float) (random.nextGaussian() * 0.02);
        }
      }
      tensors.put(e.getKey(), new Safetensors.FloatTensor(shape, values));
    }
    Safetensors.writeFloats(dir.resolve("model.safetensors"), tensors);
    config.write(dir.resolve("config.json"));
    ByteLevelBpeTokenizerJson.write(dir.resolve("tokenizer.json"));
    return config;
  }
}
