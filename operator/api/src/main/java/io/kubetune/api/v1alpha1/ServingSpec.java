package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;

/**
 * How to serve the tuned model after training. Changing these fields never restarts training. The
 * rollout itself is implemented by the serving feature; until then the operator records the request
 * in status only.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ServingSpec {
  @JsonPropertyDescription("Serve the tuned adapter once training succeeded. Default false.")
  public Boolean enabled;

  @Min(0)
  @Max(100)
  @JsonPropertyDescription("Serving replicas. Default 1.")
  public Integer replicas;

  @JsonPropertyDescription(
      "Quality gate: the tuned model is only rolled out when it passes. Default: no gate.")
  public GateSpec gate;
}
