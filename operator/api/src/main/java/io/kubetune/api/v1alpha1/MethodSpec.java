package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "self.type == 'LoRA' || !has(self.lora)",
    message = "method.lora is only allowed with method.type: LoRA")
@ValidationRule(
    value = "self.type == 'FreezeLayers' || !has(self.freeze)",
    message = "method.freeze is only allowed with method.type: FreezeLayers")
@ValidationRule(
    value = "self.type != 'FreezeLayers' || has(self.freeze)",
    message = "method.type: FreezeLayers needs method.freeze.trainableLayers")
public class MethodSpec {

  public enum Type {
    LoRA,
    Full,
    FreezeLayers
  }

  @Required
  @Size(max = 16)
  @JsonPropertyDescription(
      "LoRA trains a low-rank adapter (base frozen, exported in PEFT format); Full trains every"
          + " weight; FreezeLayers trains only the top decoder layers and the head.")
  public Type type;

  @JsonPropertyDescription("LoRA settings (type LoRA only). Every field has a default.")
  public LoraSpec lora;

  @JsonPropertyDescription("Frozen-layer settings (type FreezeLayers only).")
  public FreezeSpec freeze;
}
