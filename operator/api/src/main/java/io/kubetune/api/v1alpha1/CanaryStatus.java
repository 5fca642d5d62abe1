package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * The canary of a retrained adapter next to the served one (status.serving.adapterUri/Digest stay
 * the stable variant throughout): what is observed and what was decided.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CanaryStatus {
  @JsonPropertyDescription("Adapter served as the canary.")
  public String adapterUri;

  @JsonPropertyDescription("sha256 of the canary adapter.")
  public String adapterDigest;

  @JsonPropertyDescription("Percent of the model's requests the canary answers.")
  public Integer weight;

  @JsonPropertyDescription(
      "When the canary started (RFC 3339), recorded before the serving pods were changed;"
          + " serving.canary.duration counts from here.")
  public String startedAt;

  @JsonPropertyDescription(
      "Requests the canary answered, summed over the ready serving pods (GET /v1/variants).")
  public Long requests;

  @JsonPropertyDescription("Of those, requests that failed with a server error (HTTP 5xx).")
  public Long errors;

  @JsonPropertyDescription(
      "Requests the stable adapter answered over the same time, for comparison.")
  public Long stableRequests;

  @JsonPropertyDescription("Of those, stable requests that failed with a server error.")
  public Long stableErrors;

  @JsonPropertyDescription("Observing, Promoted or RolledBack.")
  public CanaryDecision decision;

  @JsonPropertyDescription("When the decision was made (RFC 3339).")
  public String decidedAt;

  @JsonPropertyDescription(
      "Why: the error rate against serving.canary.maxErrorRate, the quality gate, or readiness.")
  public String message;
}
