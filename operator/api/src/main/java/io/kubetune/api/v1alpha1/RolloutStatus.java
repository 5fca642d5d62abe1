package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class RolloutStatus {
  @JsonPropertyDescription("Adapter being rolled out.")
  public String adapterUri;

  @JsonPropertyDescription("sha256 of the adapter being rolled out.")
  public String adapterDigest;

  @JsonPropertyDescription(
      "When the rollout started (RFC 3339); readinessTimeout counts from here.")
  public String startedAt;
}
