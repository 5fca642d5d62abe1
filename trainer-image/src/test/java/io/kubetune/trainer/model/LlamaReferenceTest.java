package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.Python;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Compares the Java forward pass with an independent numpy implementation of transformers'
 * LlamaForCausalLM (float64), for untied and tied heads with grouped-query attention, and loads a
 * BF16 sharded checkpoint that numpy wrote.
 */
class LlamaReferenceTest {
  private static final String SCRIPT = "src/test/resources/reference/llama_numpy.py";
  private static final long[] TOKENS = {1, 87, 200, 13, 5, 290, 44, 44, 9, 120, 3};

  @TempDir Path dir;

  @Test
  void logitsMatchTheNumpyReferenceWithAnUntiedHead() throws Exception {
    Path model = dir.resolve("untied");
    TinyLlama.write(model, new TinyLlama.Size(48, 3, 6, 2, 96), false, 21);
    scaleUpWeights(model);
    assertMatchesReference(model, model);
  }

  @Test
  void logitsMatchTheNumpyReferenceWithTiedEmbeddingsAndWithoutGqa() throws Exception {
    Path model = dir.resolve("tied");
    TinyLlama.write(model, new TinyLlama.Size(32, 2, 4, 4, 64), true, 22);
    scaleUpWeights(model);
    assertMatchesReference(model, model);
  }

  @Test
  void logitsMatchTheNumpyReferenceWithLlama3RopeScaling() throws Exception {
    Path model = dir.resolve("llama3");
    TinyLlama.write(model, new TinyLlama.Size(64, 2, 4, 2, 96), false, 24);
    scaleUpWeights(model);
    ObjectMapper json = new ObjectMapper();
    com.fasterxml.jackson.databind.node.ObjectNode config =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            json.readTree(model.resolve("config.json").toFile());
    // A short original context puts the head's frequencies in all three llama3 bands.
    config.put("rope_theta", 500000.0);
    config
        .putObject("rope_scaling")
        .put("rope_type", "llama3")
        .put("factor", 8.0)
        .put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0)
        .put("original_max_position_embeddings", 64);
    json.writeValue(model.resolve("config.json").toFile(), config);
    assertThat(LlamaConfig.read(model.resolve("config.json")).ropeScaling().type())
        .isEqualTo("llama3");
    assertMatchesReference(model, model);
  }

  @Test
  void loadsBf16ShardsWrittenByNumpy() throws Exception {
    Path model = dir.resolve("fp32");
    TinyLlama.write(model, new TinyLlama.Size(32, 2, 4, 2, 64), false, 23);
    scaleUpWeights(model);
    Path sharded = dir.resolve("bf16");
    Python.Result convert = Python.run(SCRIPT, "to-bf16", model.toString(), sharded.toString());
    assertThat(convert.exitCode()).as(convert.stderr()).isZero();
    assertThat(sharded.resolve("model.safetensors")).doesNotExist();
    // Both sides read the same bf16 shards; the values differ from the fp32 model by rounding.
    assertThat(maxAbsDiff(javaLogits(sharded), referenceLogits(sharded))).isLessThan(2e-3);
    assertThat(maxAbsDiff(javaLogits(sharded), javaLogits(model))).isGreaterThan(0);
  }

  /**
   * The seeded init (std 0.02) makes logits nearly flat; larger weights make a wrong rotation, head
   * grouping or norm visible in the comparison.
   */
  private static void scaleUpWeights(Path model) throws Exception {
    try (NDManager manager = NDManager.newBaseManager()) {
      LlamaModel loaded = LlamaModel.load(model, manager);
      loaded
          .weights()
          .forEach(
              (name, w) -> {
                if (name.endsWith("norm.weight")) {
                  w.muli(1.5f);
                } else {
                  w.muli(20f);
                }
              });
      loaded.saveHuggingFace(model);
    }
  }

  private void assertMatchesReference(Path javaModel, Path referenceModel) throws Exception {
    float[][] java = javaLogits(javaModel);
    float[][] reference = referenceLogits(referenceModel);
    double spread = 0;
    for (float v : reference[TOKENS.length - 1]) {
      spread = Math.max(spread, Math.abs(v));
    }
    assertThat(spread).as("logits are not trivially flat").isGreaterThan(1.0);
    assertThat(maxAbsDiff(java, reference)).isLessThan(2e-3);
  }

  private static float[][] javaLogits(Path model) {
    try (NDManager manager = NDManager.newBaseManager()) {
      LlamaModel loaded = LlamaModel.load(model, manager);
      try (NDManager step = manager.newSubManager()) {
        float[] flat =
            loaded
                .logits(
                    loaded.hiddenStates(LlamaModel.ids(step, new long[][] {TOKENS}), null, false))
                .toFloatArray();
        int vocab = loaded.config().vocabSize();
        float[][] rows = new float[TOKENS.length][];
        for (int t = 0; t < TOKENS.length; t++) {
          rows[t] = Arrays.copyOfRange(flat, t * vocab, (t + 1) * vocab);
        }
        return rows;
      }
    }
  }

  private static float[][] referenceLogits(Path model) throws Exception {
    String ids = Arrays.stream(TOKENS).mapToObj(Long::toString).collect(Collectors.joining(","));
    Python.Result result = Python.run(SCRIPT, "logits", model.toString(), ids);
    assertThat(result.exitCode()).as(result.stderr()).isZero();
    JsonNode rows = new ObjectMapper().readTree(result.stdout()).get("logits");
    float[][] out = new float[rows.size()][];
    for (int t = 0; t < rows.size(); t++) {
      out[t] = new float[rows.get(t).size()];
      for (int v = 0; v < out[t].length; v++) {
        out[t][v] = (float) rows.get(t).get(v).asDouble();
      }
    }
    return out;
  }

  private static double maxAbsDiff(float[][] a, float[][] b) {
    double max = 0;
    for (int t = 0; t < a.length; t++) {
      for (int v = 0; v < a[t].length; v++) {
        max = Math.max(max, Math.abs(a[t][v] - b[t][v]));
      }
    }
    return max;
  }
}
