package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.Bounds;

/**
 * How to serve the tuned model after training. Changing these fields never restarts training. The
 * rollout itself is implemented by the serving feature; until then the operator records the request
 * in status only.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ServingSpec {
  @JsonPropertyDescription("Serve the tuned adapter once training succeeded. Default false.")
  public Boolean enabled;

  @Min(Bounds.REPLICAS_MIN)
  @Max(Bounds.REPLICAS_MAX)
  @JsonPropertyDescription("Serving replicas. Default " + Bounds.REPLICAS_DEFAULT + ".")
  public Integer replicas;

  @JsonPropertyDescription(
      "Quality gate: the tuned model is only rolled out when it passes. Default: no gate.")
  public GateSpec gate;

  @JsonPropertyDescription(
      "Compute for each serving pod (GPUs, CPU, memory, placement). Default: 1 CPU, 4Gi, no GPU.")
  public ResourcesSpec resources;

  @Size(max = 16)
  @Pattern("^([0-9]+(s|m|h))+$")
  @JsonPropertyDescription(
      "How long new serving pods may take to become ready before the rollout is rolled back to"
          + " the adapter that was serving, e.g. 90s, 10m, 1h. Default 10m.")
  public String readinessTimeout;

  @JsonPropertyDescription(
      "Serve a retrained adapter as a canary next to the served one before it takes over."
          + " Default: no canary (a new adapter replaces the served one in a rolling update).")
  public CanarySpec canary;
}
