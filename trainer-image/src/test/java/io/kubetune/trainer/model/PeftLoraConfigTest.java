package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PeftLoraConfigTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String Q0 = "model.layers.0.self_attn.q_proj";
  static final String Q1 = "model.layers.1.self_attn.q_proj";
  static final String V0 = "model.layers.0.self_attn.v_proj";

  static ObjectNode plain() {
    ObjectNode c = JSON.createObjectNode().put("peft_type", "LORA").put("task_type", "CAUSAL_LM");
    c.put("r", 8).put("lora_alpha", 16);
    c.putArray("target_modules").add("q_proj").add("v_proj");
    return c;
  }

  static PeftLoraConfig parse(ObjectNode config) {
    return PeftLoraConfig.parse(config, "adapter_config.json");
  }

  @Test
  void plainLoraScalesByAlphaOverRankAndRsLoraByAlphaOverItsSquareRoot() {
    assertThat(parse(plain()).scaling(Q0)).isEqualTo(2.0);
    assertThat(parse(plain().put("use_rslora", true)).scaling(Q0)).isEqualTo(16 / Math.sqrt(8));
  }

  @Test
  void patternsMatchTheModuleNameOrItsDottedSuffixAsPeftDoes() throws Exception {
    ObjectNode c = plain();
    c.set("rank_pattern", JSON.readTree("{\"v_proj\": 4, \"layers.1.self_attn.q_proj\": 2}"));
    c.set("alpha_pattern", JSON.readTree("{\"layers\\\\.0\\\\..*q_proj\": 3}"));
    PeftLoraConfig config = parse(c.put("use_rslora", true));
    assertThat(config.rank(V0)).isEqualTo(4);
    assertThat(config.rank(Q1)).isEqualTo(2);
    assertThat(config.rank(Q0)).isEqualTo(8);
    assertThat(config.alpha(Q0)).isEqualTo(3.0);
    assertThat(config.alpha(Q1)).isEqualTo(16.0);
    assertThat(config.scaling(Q1)).isEqualTo(16 / Math.sqrt(2));
    // A pattern matches after a dot only: "proj" is not a suffix module name of q_proj.
    assertThat(PeftLoraConfig.patternKey(List.of("proj"), Q0)).isNull();
    assertThat(PeftLoraConfig.patternKey(List.of("_proj", "q_proj"), Q0)).isEqualTo("q_proj");
  }

  @Test
  void everyRefusedFeatureIsNamedWhenSetAndAcceptedAtItsDefault() {
    for (Map.Entry<String, String> refused : PeftLoraConfig.REFUSED.entrySet()) {
      String field = refused.getKey();
      ObjectNode set = plain().put(field, field.equals("bias") ? "lora_only" : "x");
      assertThatThrownBy(() -> parse(set))
          .as(field)
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("adapter_config.json: " + field + " = ")
          .hasMessageContaining(refused.getValue());
      ObjectNode unset = plain();
      if (field.equals("bias")) {
        unset.put("bias", "none");
      } else {
        unset.putNull(field);
      }
      assertThat(parse(unset).rank()).isEqualTo(8);
    }
    assertThatThrownBy(() -> parse(plain().put("use_dora", true)))
        .hasMessageContaining("use_dora = true (DoRA (weight-decomposed LoRA)) is not supported");
  }

  @Test
  void unknownSetFieldsModifiedBasesAndForeignModulesAreRefused() {
    assertThat(parse(plain().putNull("some_future_option")).rank()).isEqualTo(8);
    assertThatThrownBy(() -> parse(plain().put("some_future_option", true)))
        .hasMessageContaining("unknown field some_future_option = true");
    assertThatThrownBy(() -> parse(plain().put("init_lora_weights", "pissa_niter_4")))
        .hasMessageContaining("init_lora_weights = \"pissa_niter_4\" is not supported");
    assertThat(parse(plain().put("init_lora_weights", "gaussian")).rank()).isEqualTo(8);
    ObjectNode lmHead = plain();
    lmHead.putArray("modules_to_save").add("lm_head");
    assertThatThrownBy(() -> parse(lmHead)).hasMessageContaining("modules_to_save lists 'lm_head'");
    ObjectNode classifier = plain().put("task_type", "SEQ_CLS");
    classifier.putArray("modules_to_save").add("classifier").add("score");
    assertThat(parse(classifier).taskType()).isEqualTo("SEQ_CLS");
    assertThatThrownBy(() -> parse(plain().put("target_modules", ".*q_proj")))
        .hasMessageContaining("a regular expression (\".*q_proj\") is not supported");
    assertThat(parse(plain().put("target_modules", "all-linear")).targetModules())
        .containsExactlyElementsOf(PeftLoraConfig.ALL_LINEAR);
    assertThatThrownBy(() -> parse(plain().put("task_type", "TOKEN_CLS")))
        .hasMessageContaining("task_type TOKEN_CLS is not supported");
    assertThatThrownBy(() -> parse(plain().put("peft_type", "IA3")))
        .hasMessageContaining("peft_type is 'IA3', only LORA adapters are supported");
  }

  @Test
  void missingRankAndAlphaMeanPeftsDefaults() {
    ObjectNode c = plain();
    c.remove("r");
    c.remove("lora_alpha");
    assertThat(parse(c).scaling(Q0)).isEqualTo(1.0);
  }
}
