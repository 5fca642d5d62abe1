package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.Map;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class AdapterStatus {
  @JsonPropertyDescription("Where the exported adapter (PEFT) or full weights (HF layout) are.")
  public String uri;

  @JsonPropertyDescription("peft-lora or hf-full.")
  public String format;

  @JsonPropertyDescription("sha256 of the exported weights file.")
  public String digest;

  @JsonPropertyDescription("Held-out metrics of the base model.")
  public Map<String, Double> baseMetrics;

  @JsonPropertyDescription("Held-out metrics of the tuned model.")
  public Map<String, Double> tunedMetrics;
}
