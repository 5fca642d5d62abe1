package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.model.LlamaConfig;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AdapterCompatibilityTest {
  static final LlamaConfig BASE =
      LlamaConfig.read(ServeFixtures.BASE.resolve("config.json")); // hidden 128, 4 layers

  static ObjectNode config(int rank, String... targets) {
    ObjectNode c = new ObjectMapper().createObjectNode().put("peft_type", "LORA").put("r", rank);
    var list = c.putArray("target_modules");
    for (String t : targets) {
      list.add(t);
    }
    return c;
  }

  static Map<String, long[]> qProj(int layers, int rank, long hidden) {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    for (int l = 0; l < layers; l++) {
      String p = "base_model.model.model.layers." + l + ".self_attn.q_proj";
      shapes.put(p + ".lora_A.weight", new long[] {rank, hidden});
      shapes.put(p + ".lora_B.weight", new long[] {hidden, rank});
    }
    return shapes;
  }

  @Test
  void aMatchingAdapterHasNoProblems() {
    assertThat(AdapterCompatibility.problems(BASE, config(4, "q_proj"), qProj(4, 4, 128)))
        .isEmpty();
  }

  @Test
  void mismatchesAreNamedWithBothSides() {
    assertThat(AdapterCompatibility.problems(BASE, config(4, "q_proj"), qProj(4, 4, 64)))
        .first()
        .asString()
        .contains("has shape [4, 64] but this base model with the declared rank needs [4, 128]");
    assertThat(AdapterCompatibility.problems(BASE, config(8, "q_proj"), qProj(4, 4, 128)))
        .first()
        .asString()
        .contains("needs [8, 128]");
    assertThat(AdapterCompatibility.problems(BASE, config(4, "q_proj"), qProj(6, 4, 128)))
        .first()
        .asString()
        .contains("adapts layer 4 but the base model has 4 layers");
    assertThat(AdapterCompatibility.problems(BASE, config(4, "c_attn"), qProj(4, 4, 128)))
        .anyMatch(p -> p.contains("'c_attn' does not exist"));
    assertThat(
            AdapterCompatibility.problems(
                BASE, config(4, "q_proj").put("peft_type", "IA3"), qProj(4, 4, 128)))
        .containsExactly(
            "adapter_config.json: peft_type is 'IA3', only LORA adapters are supported");
    assertThat(AdapterCompatibility.headProblems(BASE, new long[] {3, 128}, 5))
        .first()
        .asString()
        .contains("need [5, 128]");
  }
}
