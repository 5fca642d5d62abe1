package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.trainer.Testbed;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code init-tiny-model} at a vocabulary larger than the tokenizer's and with the qwen2
 * architecture (the benchmark's random-weight models at real shapes), read by the Java model and by
 * transformers.
 */
class InitTinyModelTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int VOCAB = 1000;
  private static final long[] IDS = {1, 87, 200, 13, 5, 290, 44, 9};

  @TempDir Path dir;

  private static TrainerCliTest.Run init(Path output, String... extra) {
    String[] shape = {
      "init-tiny-model",
      "--output",
      output.toString(),
      "--seed",
      "4",
      "--hidden",
      "32",
      "--layers",
      "2",
      "--heads",
      "4",
      "--kv-heads",
      "2",
      "--intermediate",
      "64"
    };
    String[] args = Arrays.copyOf(shape, shape.length + extra.length);
    System.arraycopy(extra, 0, args, shape.length, extra.length);
    return TrainerCliTest.run(args);
  }

  @Test
  void qwen2WithALargerVocabularyLoadsWithItsShapesAndBiasesInJavaAndTransformers()
      throws Exception {
    Path model = dir.resolve("qwen2");
    TrainerCliTest.Run init =
        init(model, "--architecture", "qwen2", "--vocab-size", String.valueOf(VOCAB));
    assertThat(init.code()).as(init.err()).isZero();
    JsonNode config = JSON.readTree(model.resolve("config.json").toFile());
    assertThat(config.get("model_type").asText()).isEqualTo("qwen2");
    assertThat(config.get("architectures").get(0).asText()).isEqualTo("Qwen2ForCausalLM");
    assertThat(config.get("vocab_size").asInt()).isEqualTo(VOCAB);

    float[] javaLogits;
    try (NDManager root = NDManager.newBaseManager();
        LlamaModel loaded = LlamaModel.load(model, root)) {
      assertThat(loaded.config().qkvBias()).isTrue();
      assertThat(loaded.config().vocabSize()).isEqualTo(VOCAB);
      assertThat(JSON.readTree(init.out()).get("parameters").asLong())
          .isEqualTo(loaded.config().parameterCount());
      assertThat(loaded.weights().get(LlamaModel.EMBED).getShape().getShape())
          .containsExactly(VOCAB, 32);
      for (int layer = 0; layer < 2; layer++) {
        String attention = LlamaModel.layerPrefix(layer) + "self_attn.";
        assertThat(loaded.weights().get(attention + "q_proj.bias").getShape().getShape())
            .containsExactly(32);
        assertThat(loaded.weights().get(attention + "k_proj.bias").getShape().getShape())
            .containsExactly(16);
        assertThat(loaded.weights().get(attention + "v_proj.bias").getShape().getShape())
            .containsExactly(16);
        assertThat(loaded.weights()).doesNotContainKey(attention + "o_proj.bias");
      }
      try (NDManager step = root.newSubManager()) {
        NDArray logits =
            loaded.logits(
                loaded.hiddenStates(LlamaModel.ids(step, new long[][] {IDS}), null, false));
        assertThat(logits.getShape().getShape()).containsExactly(1, IDS.length, VOCAB);
        javaLogits = logits.toFloatArray();
      }
    }

    // transformers reads the same folder as Qwen2ForCausalLM with every tensor used and none
    // missing, and computes the same logits.
    String script =
        String.join(
            "\n",
            "import json, sys, torch",
            "from transformers import AutoModelForCausalLM",
            "model, info = AutoModelForCausalLM.from_pretrained(sys.argv[1],"
                + " output_loading_info=True, attn_implementation='eager')",
            "ids = torch.tensor([json.loads(sys.argv[2])])",
            "with torch.no_grad():",
            "    logits = model(ids).logits[0].flatten().tolist()",
            "print(json.dumps({'class': type(model).__name__, 'missing': sorted(info['missing_keys']),",
            "    'unexpected': sorted(info['unexpected_keys']),",
            "    'bias': list(model.model.layers[0].self_attn.q_proj.bias.shape),",
            "    'logits': logits}))");
    Path out = dir.resolve("transformers.json");
    ProcessBuilder command =
        new ProcessBuilder(
                Testbed.python().toString(), "-c", script, model.toString(), Arrays.toString(IDS))
            .redirectOutput(out.toFile())
            .redirectError(ProcessBuilder.Redirect.INHERIT);
    command.environment().put("HF_HUB_DISABLE_PROGRESS_BARS", "1");
    Process python = command.start();
    assertThat(python.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(python.exitValue()).isZero();
    JsonNode peer = JSON.readTree(Files.readString(out).lines().reduce((a, b) -> b).orElseThrow());
    assertThat(peer.get("class").asText()).isEqualTo("Qwen2ForCausalLM");
    assertThat(peer.get("missing")).isEmpty();
    assertThat(peer.get("unexpected")).isEmpty();
    assertThat(peer.get("bias").get(0).asInt()).isEqualTo(32);
    assertThat(peer.get("logits")).hasSize(javaLogits.length);
    for (int i = 0; i < javaLogits.length; i++) {
      assertThat(peer.get("logits").get(i).asDouble())
          .as("logit %d", i)
          .isCloseTo(javaLogits[i], org.assertj.core.data.Offset.offset(1e-4));
    }
  }

  @Test
  void defaultsToLlamaWithTheTokenizersVocabulary() throws Exception {
    Path model = dir.resolve("llama");
    TrainerCliTest.Run init = init(model);
    assertThat(init.code()).as(init.err()).isZero();
    JsonNode config = JSON.readTree(model.resolve("config.json").toFile());
    assertThat(config.get("model_type").asText()).isEqualTo("llama");
    assertThat(config.get("vocab_size").asInt()).isEqualTo(TinyLlama.minVocabSize());
    assertThat(config.get("tie_word_embeddings").asBoolean()).isTrue();
  }

  @Test
  void tieEmbeddingsFlagsSetWhatTheySay() throws Exception {
    assertThat(init(dir.resolve("tied"), "--tie-embeddings").code()).isZero();
    assertThat(init(dir.resolve("untied"), "--no-tie-embeddings").code()).isZero();
    assertThat(tied(dir.resolve("tied"))).isTrue();
    assertThat(tied(dir.resolve("untied"))).isFalse();
  }

  private static boolean tied(Path model) throws Exception {
    return JSON.readTree(model.resolve("config.json").toFile())
        .get("tie_word_embeddings")
        .asBoolean();
  }

  @Test
  void refusesAVocabularySmallerThanTheTokenizersNamingTheOptionAndTheMinimum() {
    TrainerCliTest.Run init =
        init(dir.resolve("small"), "--vocab-size", String.valueOf(TinyLlama.minVocabSize() - 1));
    assertThat(init.code()).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(init.err())
        .contains("--vocab-size must be at least " + TinyLlama.minVocabSize())
        .contains("tokenizer");
    assertThat(dir.resolve("small")).doesNotExist();
  }

  @Test
  void refusesAnUnknownArchitectureNamingTheChoices() {
    TrainerCliTest.Run init = init(dir.resolve("mistral"), "--architecture", "mistral");
    assertThat(init.code()).isEqualTo(TrainerExitCodes.BAD_INPUT);
    assertThat(init.err()).contains("--architecture must be one of llama, qwen2");
  }
}
