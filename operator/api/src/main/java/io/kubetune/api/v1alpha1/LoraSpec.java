package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.Bounds;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class LoraSpec {
  // Defaults and bounds live in Bounds; these names remain for callers.
  public static final int DEFAULT_RANK = Bounds.LORA_RANK_DEFAULT;
  public static final double DEFAULT_ALPHA = Bounds.LORA_ALPHA_DEFAULT;
  public static final double DEFAULT_DROPOUT = Bounds.LORA_DROPOUT_DEFAULT;
  public static final List<String> DEFAULT_TARGET_MODULES = List.of("q_proj", "v_proj");

  /** The Llama linear layers an adapter can attach to, by their Hugging Face module names. */
  public static final List<String> KNOWN_TARGET_MODULES =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  @Min(Bounds.LORA_RANK_MIN)
  @Max(Bounds.LORA_RANK_MAX)
  @JsonPropertyDescription("Adapter rank r. Default " + Bounds.LORA_RANK_DEFAULT + ".")
  public Integer rank;

  @Min(value = Bounds.LORA_ALPHA_MIN_EXCLUSIVE, inclusive = false)
  @Max(Bounds.LORA_ALPHA_MAX)
  @JsonPropertyDescription(
      "Scaling alpha; the update is (alpha / r) * B * A. Default "
          + Bounds.LORA_ALPHA_DEFAULT
          + ".")
  public Double alpha;

  @Min(Bounds.LORA_DROPOUT_MIN)
  @Max(Bounds.LORA_DROPOUT_MAX)
  @JsonPropertyDescription(
      "Dropout on the adapter input during training. Default " + Bounds.LORA_DROPOUT_DEFAULT + ".")
  public Double dropout;

  @Size(min = 1, max = 7)
  @JsonPropertyDescription(
      "Hugging Face module names to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,"
          + " down_proj. Default [q_proj, v_proj].")
  public List<@Size(max = 16) @Pattern("^(q|k|v|o|gate|up|down)_proj$") String> targetModules;
}
