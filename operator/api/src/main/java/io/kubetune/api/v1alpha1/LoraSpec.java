package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class LoraSpec {
  public static final int DEFAULT_RANK = 8;
  public static final double DEFAULT_ALPHA = 16;
  public static final double DEFAULT_DROPOUT = 0.05;
  public static final List<String> DEFAULT_TARGET_MODULES = List.of("q_proj", "v_proj");

  /** The Llama linear layers an adapter can attach to, by their Hugging Face module names. */
  public static final List<String> KNOWN_TARGET_MODULES =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  @Min(1)
  @Max(1024)
  @JsonPropertyDescription("Adapter rank r. Default 8.")
  public Integer rank;

  @Min(0.0)
  @Max(4096.0)
  @JsonPropertyDescription("Scaling alpha; the update is (alpha / r) * B * A. Default 16.")
  public Double alpha;

  @Min(0.0)
  @Max(0.9)
  @JsonPropertyDescription("Dropout on the adapter input during training. Default 0.05.")
  public Double dropout;

  @Size(min = 1, max = 7)
  @JsonPropertyDescription(
      "Hugging Face module names to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,"
          + " down_proj. Default [q_proj, v_proj].")
  public List<@Size(max = 16) @Pattern("^(q|k|v|o|gate|up|down)_proj$") String> targetModules;
}
