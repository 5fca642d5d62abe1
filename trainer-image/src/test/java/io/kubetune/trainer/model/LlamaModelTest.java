package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.kubetune.trainer.BadInputException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaModelTest {

  @TempDir static Path dir;
  static NDManager root;
  static LlamaModel model;

  @BeforeAll
  static void writeAndLoadTinyModel() throws Exception {
    TinyLlama.write(dir.resolve("tiny"), TinyLlama.TEST_SIZE, false, 7);
    root = NDManager.newBaseManager();
    model = LlamaModel.load(dir.resolve("tiny"), root);
  }

  @AfterAll
  static void close() {
    root.close();
  }

  @Test
  void tokenizerJsonLoadsOfflineAndRoundTrips() {
    try (TextTokenizer tokenizer = TextTokenizer.load(dir.resolve("tiny"))) {
      String text = "the cat sat on the mat, naïve ünïcode ✓";
      long[] ids = tokenizer.encode(text);
      assertThat(ids.length).as("merges shorten the text").isLessThan(text.getBytes().length);
      assertThat(tokenizer.decode(ids)).isEqualTo(text);
      assertThat(tokenizer.encode("<|user|>\nhi</s>"))
          .startsWith(ByteLevelBpeTokenizerJson.idOf("<|user|>"))
          .endsWith(ByteLevelBpeTokenizerJson.idOf("</s>"));
      for (long id : ids) {
        assertThat(id).isBetween(0L, (long) model.config().vocabSize() - 1);
      }
    }
  }

  @Test
  void loadsEveryTensorUnderItsHuggingFaceName() {
    assertThat(model.weights())
        .containsKeys(
            "model.embed_tokens.weight",
            "model.layers.1.self_attn.k_proj.weight",
            "model.layers.0.mlp.down_proj.weight",
            "model.layers.1.post_attention_layernorm.weight",
            "model.norm.weight",
            "lm_head.weight");
    assertThat(model.weights().get("model.layers.0.self_attn.k_proj.weight").getShape().getShape())
        .as("GQA: 2 kv heads of 8 dims")
        .containsExactly(16, 32);
  }

  @Test
  void incrementalDecodingWithKvCacheMatchesTheFullForwardPass() {
    long[] tokens = {5, 17, 200, 33, 90, 12};
    try (NDManager step = root.newSubManager()) {
      NDArray full =
          model.logits(
              model.hiddenStates(LlamaModel.ids(step, new long[][] {tokens}), null, false));
      try (KvCache cache = new KvCache(step, model.config().numHiddenLayers())) {
        NDArray prefix =
            model.logits(
                model.hiddenStates(
                    LlamaModel.ids(step, new long[][] {{5, 17, 200}}), cache, false));
        assertThat(prefix.get("0, 2").toFloatArray())
            .containsExactly(
                full.get("0, 2").toFloatArray(), org.assertj.core.data.Offset.offset(1e-5f));
        for (int t = 3; t < tokens.length; t++) {
          NDArray next =
              model.logits(
                  model.hiddenStates(
                      LlamaModel.ids(step, new long[][] {{tokens[t]}}), cache, false));
          assertThat(next.get("0, 0").toFloatArray())
              .containsExactly(
                  full.get("0, " + t).toFloatArray(), org.assertj.core.data.Offset.offset(1e-5f));
        }
      }
    }
  }

  @Test
  void kvCacheHoldsOnlyTheCurrentKeysAndValuesWhileGenerating() {
    try (NDManager scope = root.newSubManager();
        KvCache cache = new KvCache(scope, model.config().numHiddenLayers())) {
      for (int t = 0; t < 20; t++) {
        try (NDManager step = scope.newSubManager()) {
          model.hiddenStates(LlamaModel.ids(step, new long[][] {{t + 1}}), cache, false);
        }
      }
      assertThat(cache.length()).isEqualTo(20);
      // One key and one value array per layer, not one per generated token.
      assertThat(scope.getManagedArrays()).hasSize(2 * model.config().numHiddenLayers());
    }
  }

  @Test
  void causalMaskKeepsEarlierLogitsIndependentOfLaterTokens() {
    try (NDManager step = root.newSubManager()) {
      NDArray a =
          model.logits(
              model.hiddenStates(LlamaModel.ids(step, new long[][] {{1, 2, 3, 4}}), null, false));
      NDArray b =
          model.logits(
              model.hiddenStates(LlamaModel.ids(step, new long[][] {{1, 2, 99, 98}}), null, false));
      assertThat(a.get("0, 1").toFloatArray())
          .containsExactly(
              b.get("0, 1").toFloatArray(), org.assertj.core.data.Offset.offset(1e-6f));
      assertThat(a.get("0, 3").toFloatArray()).isNotEqualTo(b.get("0, 3").toFloatArray());
    }
  }

  @Test
  void unknownArchitectureIsBadInput() throws Exception {
    Path other = dir.resolve("gpt2");
    Files.createDirectories(other);
    Files.writeString(other.resolve("config.json"), "{\"model_type\": \"gpt2\"}");
    assertThatThrownBy(() -> LlamaModel.load(other, root))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("model_type 'gpt2' is not supported")
        .hasMessageContaining("llama, mistral, qwen2, qwen3");
  }

  @Test
  void missingModelFilesAndMalformedHeadersAreBadInputNamingTheFile() throws Exception {
    Path tiny = dir.resolve("tiny");

    Path noConfig = dir.resolve("no-config");
    Files.createDirectories(noConfig);
    Files.copy(tiny.resolve("model.safetensors"), noConfig.resolve("model.safetensors"));
    assertThatThrownBy(() -> LlamaModel.load(noConfig, root))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining(noConfig.resolve("config.json").toString());

    // An index whose second shard was never uploaded.
    Path sharded = dir.resolve("sharded");
    Files.createDirectories(sharded);
    Files.copy(tiny.resolve("config.json"), sharded.resolve("config.json"));
    Files.copy(
        tiny.resolve("model.safetensors"), sharded.resolve("model-00001-of-00002.safetensors"));
    Files.writeString(
        sharded.resolve("model.safetensors.index.json"),
        "{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
            + " \"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}");
    assertThatThrownBy(() -> LlamaModel.load(sharded, root))
        .isInstanceOf(BadInputException.class)
        .hasMessage(
            sharded.resolve("model.safetensors.index.json")
                + " lists shard model-00002-of-00002.safetensors (for model.norm.weight) but "
                + sharded
                + " has no such file; upload every shard of the model");

    // A header whose shape holds a string: was a ClassCastException (exit 1, retried).
    Path badShape = dir.resolve("bad-shape");
    Files.createDirectories(badShape);
    Files.copy(tiny.resolve("config.json"), badShape.resolve("config.json"));
    byte[] header =
        "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[\"16\"],\"data_offsets\":[0,64]}}"
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    java.nio.ByteBuffer file =
        java.nio.ByteBuffer.allocate(8 + header.length + 64)
            .order(java.nio.ByteOrder.LITTLE_ENDIAN);
    file.putLong(header.length).put(header);
    Files.write(badShape.resolve("model.safetensors"), file.array());
    assertThatThrownBy(() -> LlamaModel.load(badShape, root))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining(badShape.resolve("model.safetensors").toString())
        .hasMessageContaining("non-integer shape element \"16\"");
  }

  @Test
  void loraWithZeroBLeavesOutputsUnchangedAndMergingMatchesTheAdapter() throws Exception {
    Path copy = dir.resolve("merge");
    TinyLlama.write(copy, TinyLlama.TEST_SIZE, true, 11);
    try (NDManager scope = root.newSubManager()) {
      LlamaModel local = LlamaModel.load(copy, scope);
      long[][] ids = {{3, 1, 4, 1, 5, 9, 2, 6}};
      float[] base = model(local, scope, ids);

      LoraAdapter adapter =
          LoraAdapter.create(local, 4, 8, 0.0, List.of("q_proj", "v_proj", "down_proj"), 1);
      local.setAdapter(adapter);
      assertThat(model(local, scope, ids)).containsExactly(base);

      // Give B non-zero values, as training would.
      for (String module :
          List.of("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj")) {
        NDArray b = adapter.b(module);
        b.addi(scope.randomNormal(0, 0.5f, b.getShape(), b.getDataType()));
      }
      float[] adapted = model(local, scope, ids);
      assertThat(maxAbsDiff(adapted, base)).isGreaterThan(1e-3f);

      adapter.mergeInto(local);
      local.setAdapter(null);
      assertThat(maxAbsDiff(model(local, scope, ids), adapted)).isLessThan(1e-4f);
    }
  }

  @Test
  void fusedFrozenProjectionsGiveTheSameLogitsAndGradientsAndStayEachModulesWeight()
      throws Exception {
    Path copy = dir.resolve("fused");
    TinyLlama.write(copy, TinyLlama.TEST_SIZE, true, 13);
    // The B's below come from the engine's generator: seeded, they do not depend on test order.
    ai.djl.engine.Engine.getInstance().setRandomSeed(13);
    try (NDManager scope = root.newSubManager()) {
      LlamaModel local = LlamaModel.load(copy, scope);
      long[][] ids = {{3, 1, 4, 1, 5, 9, 2, 6}, {2, 7, 1, 8, 2, 8, 1, 8}};
      LoraAdapter adapter =
          LoraAdapter.create(
              local,
              4,
              8,
              0.0,
              List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
              1);
      for (String module : adapter.targetModules()) {
        for (int l = 0; l < local.config().numHiddenLayers(); l++) {
          NDArray b = adapter.b(LlamaModel.moduleName(l, module));
          b.addi(scope.randomNormal(0, 0.5f, b.getShape(), b.getDataType()));
        }
      }
      local.setAdapter(adapter);
      String key = "model.layers.0.self_attn.k_proj.weight";
      float[] keyWeight = local.weights().get(key).toFloatArray();
      float[][] separate = logitsAndGradients(local, adapter, scope, ids);

      // Layer 1's MLP counts as trained here: its gate/up stay separate, everything else fuses.
      local.fuseFrozenProjections(name -> name.startsWith("model.layers.1.mlp."));
      assertThat(local.weights().get(key).toFloatArray()).containsExactly(keyWeight);
      float[][] fusedRun = logitsAndGradients(local, adapter, scope, ids);
      // The same products, summed in another order: float noise only. Fused, the q/k/v adapters
      // also share one down-projection, which sums their input gradients inside one GEMM. This
      // small network with large random B's amplifies rounding: scaling every B by (1 + 1e-7),
      // about one ulp, moved these gradients by up to 2e-5 of their largest value (30 seeds), and
      // fused against separate differed by up to 5.5e-5. A wrong member order or scaling would
      // differ by the size of the values themselves.
      for (int i = 0; i < separate.length; i++) {
        float scale = maxAbsDiff(separate[i], new float[separate[i].length]);
        assertThat(scale).as("array %d", i).isGreaterThan(0f);
        assertThat(maxAbsDiff(fusedRun[i], separate[i]))
            .as("array %d", i)
            .isLessThanOrEqualTo(2e-4f * scale);
      }

      // Merging writes through the views into the fused arrays the forward pass multiplies by.
      float[] adapted = separate[0];
      adapter.mergeInto(local);
      local.setAdapter(null);
      assertThat(maxAbsDiff(model(local, scope, ids), adapted)).isLessThan(1e-4f);
    }
  }

  /** Logits, then the gradients of every adapter array for the sum of the logits times a ramp. */
  private static float[][] logitsAndGradients(
      LlamaModel m, LoraAdapter adapter, NDManager scope, long[][] ids) {
    List<float[]> out = new java.util.ArrayList<>();
    adapter.peftTensors().values().forEach(a -> a.setRequiresGradient(true));
    try (NDManager step = scope.newSubManager();
        ai.djl.training.GradientCollector collector =
            ai.djl.engine.Engine.getInstance().newGradientCollector()) {
      NDArray logits = m.logits(m.hiddenStates(LlamaModel.ids(step, ids), null, true));
      out.add(logits.toFloatArray());
      NDArray ramp = step.arange((float) logits.size()).reshape(logits.getShape());
      collector.backward(logits.mul(ramp.div(step.create((float) logits.size()))).sum());
      for (NDArray a : adapter.peftTensors().values()) {
        NDArray gradient = a.getGradient();
        out.add(gradient.toFloatArray());
        gradient.subi(gradient);
      }
    }
    return out.toArray(new float[0][]);
  }

  @Test
  void peftAdapterRoundTripsAndForeignTargetsAreBadInput() throws Exception {
    try (NDManager scope = root.newSubManager()) {
      LoraAdapter adapter = LoraAdapter.create(model, 2, 4, 0.0, List.of("k_proj", "down_proj"), 9);
      adapter.b("model.layers.1.mlp.down_proj").addi(1f);
      Path out = dir.resolve("peft");
      adapter.savePeft(out, "base", "CAUSAL_LM", java.util.Map.of());
      LoraAdapter loaded = LoraAdapter.loadPeft(out, model);
      assertThat(loaded.targetModules()).containsExactly("k_proj", "down_proj");
      assertThat(loaded.scaling()).isEqualTo(2.0);
      assertThat(loaded.b("model.layers.1.mlp.down_proj").toFloatArray())
          .containsExactly(adapter.b("model.layers.1.mlp.down_proj").toFloatArray());
      assertThat(loaded.a("model.layers.0.self_attn.k_proj").toFloatArray())
          .containsExactly(adapter.a("model.layers.0.self_attn.k_proj").toFloatArray());

      Files.writeString(
          out.resolve("adapter_config.json"),
          Files.readString(out.resolve("adapter_config.json"))
              .replace("\"k_proj\"", "\"lm_head\""));
      assertThatThrownBy(() -> LoraAdapter.loadPeft(out, model))
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("LoRA on 'lm_head' is not supported");
    }
  }

  private static float[] model(LlamaModel m, NDManager scope, long[][] ids) {
    try (NDManager step = scope.newSubManager()) {
      return m.logits(m.hiddenStates(LlamaModel.ids(step, ids), null, false)).toFloatArray();
    }
  }

  static float maxAbsDiff(float[] a, float[] b) {
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }
}
