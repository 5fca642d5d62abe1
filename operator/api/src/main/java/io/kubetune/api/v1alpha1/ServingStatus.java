package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ServingStatus {
  @JsonPropertyDescription("In-cluster URL of the OpenAI-compatible endpoint.")
  public String endpoint;

  @JsonPropertyDescription("Adapter URI the serving pods load.")
  public String adapterUri;

  @JsonPropertyDescription("Serving pods ready.")
  public Integer readyReplicas;
}
