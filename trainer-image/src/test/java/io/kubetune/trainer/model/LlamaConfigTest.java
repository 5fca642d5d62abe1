package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * config.json of transformers 4.x and 5.x: where each field may be, the defaults of transformers'
 * config classes when one is absent, and rejections that name the field.
 */
class LlamaConfigTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  private ObjectNode base(String modelType) {
    ObjectNode c = JSON.createObjectNode();
    c.put("model_type", modelType);
    c.put("vocab_size", 1000);
    c.put("hidden_size", 64);
    c.put("intermediate_size", 128);
    c.put("num_hidden_layers", 30);
    c.put("num_attention_heads", 4);
    c.put("num_key_value_heads", 2);
    return c;
  }

  private LlamaConfig read(ObjectNode config) throws Exception {
    Path file = dir.resolve("config.json");
    Files.writeString(file, JSON.writeValueAsString(config));
    return LlamaConfig.read(file);
  }

  @Test
  void ropeThetaInsideRopeParametersAsTransformers5WritesIt() throws Exception {
    ObjectNode c = base("qwen2");
    c.putObject("rope_parameters").put("rope_type", "default").put("rope_theta", 1e6);
    LlamaConfig config = read(c);
    assertThat(config.ropeTheta()).isEqualTo(1e6);
    assertThat(config.ropeScaling()).isNull();
  }

  @Test
  void transformers4RopeScalingWithTopLevelRopeTheta() throws Exception {
    ObjectNode c = base("llama");
    c.put("rope_theta", 500000.0);
    c.put("max_position_embeddings", 4096);
    c.put("torch_dtype", "bfloat16");
    c.putObject("rope_scaling")
        .put("type", "llama3")
        .put("factor", 8.0)
        .put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0);
    LlamaConfig config = read(c);
    assertThat(config.ropeTheta()).isEqualTo(500000.0);
    assertThat(config.ropeScaling().type()).isEqualTo("llama3");
    // As transformers' standardize_rope_params: absent, it is max_position_embeddings.
    assertThat(config.ropeScaling().originalMaxPositionEmbeddings()).isEqualTo(4096);
  }

  @Test
  void ropeScalingTakesPrecedenceOverRopeParametersAsInTransformers() throws Exception {
    ObjectNode c = base("llama");
    c.putObject("rope_parameters").put("rope_type", "default").put("rope_theta", 1e4);
    c.putObject("rope_scaling").put("rope_type", "linear").put("factor", 2.0);
    LlamaConfig config = read(c);
    assertThat(config.ropeScaling().type()).isEqualTo("linear");
    assertThat(config.ropeScaling().factor()).isEqualTo(2.0);
    assertThat(config.ropeTheta()).isEqualTo(1e4);
  }

  @Test
  void absentRopeThetaIsTransformersDefaultTheta() throws Exception {
    assertThat(read(base("mistral")).ropeTheta()).isEqualTo(10_000.0);
  }

  @Test
  void unsupportedRopeTypeIsRejectedNamingTheField() {
    ObjectNode c = base("llama");
    c.putObject("rope_parameters").put("rope_type", "yarn").put("factor", 4.0);
    assertThatThrownBy(() -> read(c))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("rope_parameters.rope_type")
        .hasMessageContaining("'yarn'")
        .hasMessageContaining("default, linear, llama3");
  }

  @Test
  void llama3ScalingWithoutItsFactorsIsRejectedNamingTheField() {
    ObjectNode c = base("llama");
    c.putObject("rope_parameters").put("rope_type", "llama3").put("factor", 8.0);
    assertThatThrownBy(() -> read(c))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("rope_parameters.low_freq_factor is missing");
  }

  @Test
  void unknownModelTypeIsRejectedWithTheSupportedList() {
    assertThatThrownBy(() -> read(base("gemma2")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("field model_type 'gemma2' is not supported")
        .hasMessageContaining("llama, mistral, qwen2, qwen3");
  }

  @Test
  void hiddenActOtherThanSiluIsRejected() {
    ObjectNode c = base("llama");
    c.put("hidden_act", "gelu_pytorch_tanh");
    assertThatThrownBy(() -> read(c))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("field hidden_act 'gelu_pytorch_tanh' is not supported");
  }

  @Test
  void missingShapeFieldIsRejectedNamingIt() {
    ObjectNode c = base("qwen3");
    c.remove("intermediate_size");
    assertThatThrownBy(() -> read(c))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("config.json: field intermediate_size is missing");
  }

  @Test
  void zeroOrNegativeShapeFieldsAreRejectedNamingThem() {
    // num_attention_heads 0 used to divide by zero (ArithmeticException: exit 1, retried).
    for (String field :
        java.util.List.of(
            "num_attention_heads",
            "num_key_value_heads",
            "hidden_size",
            "num_hidden_layers",
            "vocab_size",
            "intermediate_size")) {
      ObjectNode c = base("llama");
      c.put(field, 0);
      assertThatThrownBy(() -> read(c))
          .as(field)
          .isInstanceOf(BadInputException.class)
          .hasMessageEndingWith(
              "config.json: field " + field + " must be a positive integer, got 0");
    }
    ObjectNode c = base("qwen3");
    c.put("head_dim", -8);
    assertThatThrownBy(() -> read(c))
        .isInstanceOf(BadInputException.class)
        .hasMessageEndingWith("config.json: field head_dim must be a positive integer, got -8");
  }

  @Test
  void mlpBiasAndQuantizedCheckpointsAndIntegerDtypesAreRejected() {
    ObjectNode mlp = base("llama");
    mlp.put("mlp_bias", true);
    assertThatThrownBy(() -> read(mlp)).hasMessageContaining("field mlp_bias");
    ObjectNode quantized = base("qwen2");
    quantized.putObject("quantization_config").put("quant_method", "gptq");
    assertThatThrownBy(() -> read(quantized)).hasMessageContaining("field quantization_config");
    ObjectNode dtype = base("mistral");
    dtype.put("dtype", "int8");
    assertThatThrownBy(() -> read(dtype)).hasMessageContaining("field dtype 'int8'");
  }

  @Test
  void everyEosIdOfAListIsKept() throws Exception {
    ObjectNode c = base("llama");
    c.putArray("eos_token_id").add(128001).add(128008).add(128009);
    LlamaConfig config = read(c);
    assertThat(config.eosTokenIds()).containsExactly(128001, 128008, 128009);
    assertThat(config.eosTokenId()).isEqualTo(128001);
    c.put("eos_token_id", 7);
    assertThat(read(c).eosTokenIds()).containsExactly(7);
  }

  @Test
  void absentTokenIdsTakeTheConfigClassDefaults() throws Exception {
    LlamaConfig llama = read(base("llama"));
    assertThat(llama.bosTokenId()).isEqualTo(1);
    assertThat(llama.eosTokenIds()).containsExactly(2);
    // Qwen2Config and Qwen3Config have no default: uses that need one are refused.
    LlamaConfig qwen = read(base("qwen2"));
    assertThat(qwen.eosTokenIds()).isEmpty();
    assertThatThrownBy(qwen::eosTokenId).hasMessageContaining("eos_token_id");
    assertThatThrownBy(qwen::bosTokenId).hasMessageContaining("bos_token_id");
  }

  @Test
  void absentShapeDetailsTakeEachModelTypesDefaults() throws Exception {
    ObjectNode qwen3 = base("qwen3");
    qwen3.remove("num_key_value_heads");
    qwen3.put("num_attention_heads", 64);
    LlamaConfig q3 = read(qwen3);
    assertThat(q3.headDim()).isEqualTo(128); // not hidden / heads
    assertThat(q3.numKeyValueHeads()).isEqualTo(32);
    assertThat(q3.maxPositionEmbeddings()).isEqualTo(32768);
    assertThat(q3.qkNorm()).isTrue();
    ObjectNode llama = base("llama");
    llama.remove("num_key_value_heads");
    LlamaConfig l = read(llama);
    assertThat(l.headDim()).isEqualTo(16);
    assertThat(l.numKeyValueHeads()).isEqualTo(4);
    assertThat(l.maxPositionEmbeddings()).isEqualTo(2048);
    assertThat(l.rmsNormEps()).isEqualTo(1e-6);
    assertThat(l.tieWordEmbeddings()).isFalse();
  }

  @Test
  void mistralSlidesOnEveryLayerWithTheDefaultWindowUnlessItIsNull() throws Exception {
    LlamaConfig absent = read(base("mistral"));
    assertThat(absent.slidingWindow()).isEqualTo(4096);
    assertThat(absent.slidingWindowAt(0)).isTrue();
    assertThat(absent.slidingWindowAt(29)).isTrue();
    ObjectNode none = base("mistral");
    none.putNull("sliding_window");
    assertThat(read(none).slidingWindow()).isNull();
  }

  @Test
  void qwenSlidesOnlyWithUseSlidingWindowFromMaxWindowLayers() throws Exception {
    ObjectNode off = base("qwen2");
    off.put("sliding_window", 32768);
    assertThat(read(off).slidingWindow()).isNull();
    ObjectNode on = base("qwen2");
    on.put("use_sliding_window", true);
    LlamaConfig config = read(on);
    assertThat(config.slidingWindow()).isEqualTo(4096);
    assertThat(config.slidingWindowAt(27)).isFalse();
    assertThat(config.slidingWindowAt(28)).isTrue();
    ObjectNode types = base("qwen3");
    types.put("use_sliding_window", true).put("sliding_window", 8).put("num_hidden_layers", 2);
    types.putArray("layer_types").add("sliding_attention").add("chunked_attention");
    assertThatThrownBy(() -> read(types))
        .hasMessageContaining("field layer_types 'chunked_attention' is not supported");
  }

  @Test
  void biasesFollowTheArchitecture() throws Exception {
    assertThat(read(base("qwen2")).qkvBias()).isTrue();
    assertThat(read(base("qwen2")).attentionBias()).isFalse();
    ObjectNode llama = base("llama");
    llama.put("attention_bias", true);
    assertThat(read(llama).attentionBias()).isTrue();
    // MistralConfig has no attention_bias; its attention never has biases.
    ObjectNode mistral = base("mistral");
    mistral.put("attention_bias", true);
    assertThat(read(mistral).attentionBias()).isFalse();
  }

  @Test
  void writtenConfigReadsBackEqual() throws Exception {
    ObjectNode llama = base("llama");
    llama.putArray("eos_token_id").add(5).add(6);
    llama
        .putObject("rope_parameters")
        .put("rope_type", "llama3")
        .put("rope_theta", 500000.0)
        .put("factor", 32.0)
        .put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0)
        .put("original_max_position_embeddings", 8192);
    ObjectNode qwen = base("qwen2");
    qwen.put("use_sliding_window", true).put("sliding_window", 16).put("max_window_layers", 3);
    qwen.put("bos_token_id", 9);
    ObjectNode qwen3 = base("qwen3");
    qwen3.put("attention_bias", true).put("head_dim", 24);
    for (ObjectNode c : new ObjectNode[] {llama, qwen, qwen3, base("mistral")}) {
      LlamaConfig config = read(c);
      Path again = dir.resolve("again.json");
      config.write(again);
      assertThat(LlamaConfig.read(again)).isEqualTo(config);
    }
  }
}
