package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ServingStatus {
  @JsonPropertyDescription("In-cluster URL of the OpenAI-compatible endpoint.")
  public String endpoint;

  @JsonPropertyDescription("Model name to request: the FineTuneJob's name (the adapter).")
  public String model;

  @JsonPropertyDescription("Adapter URI the ready serving pods load.")
  public String adapterUri;

  @JsonPropertyDescription("sha256 of the adapter the ready serving pods load.")
  public String adapterDigest;

  @JsonPropertyDescription("Serving pods ready.")
  public Integer readyReplicas;

  @JsonPropertyDescription("A rollout to a new adapter in progress, recorded before it started.")
  public RolloutStatus rollout;

  @JsonPropertyDescription(
      "Digest of the last adapter whose rollout failed (not retried until a new run).")
  public String failedAdapterDigest;

  @JsonPropertyDescription(
      "The canary of a retrained adapter served next to adapterUri, and its decision.")
  public CanaryStatus canary;
}
