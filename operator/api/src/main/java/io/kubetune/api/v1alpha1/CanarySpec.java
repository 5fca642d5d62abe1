package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.Bounds;

/**
 * A retrained adapter is served next to the one it replaces before it takes over: the serving pods
 * answer {@link #weight} percent of the requests for the model with the new adapter for {@link
 * #duration}, then the operator promotes it or rolls it back. Present (even empty, {@code canary:
 * {}}) turns canaries on; absent, a new adapter replaces the served one in a plain rolling update.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CanarySpec {
  @Min(Bounds.CANARY_WEIGHT_MIN)
  @Max(Bounds.CANARY_WEIGHT_MAX)
  @JsonPropertyDescription(
      "Percent of the requests for the model that the new adapter answers while it is a canary"
          + " (the rest go to the adapter that was serving). Default "
          + Bounds.CANARY_WEIGHT_DEFAULT
          + ".")
  public Integer weight;

  @Size(max = 16)
  @Pattern("^([0-9]+(s|m|h))+$")
  @JsonPropertyDescription(
      "How long the canary is served next to the current adapter before it is promoted or rolled"
          + " back, e.g. 90s, 10m, 1h. Default "
          + Bounds.CANARY_DURATION_DEFAULT
          + ".")
  public String duration;

  @Min(Bounds.CANARY_MAX_ERROR_RATE_MIN)
  @Max(Bounds.CANARY_MAX_ERROR_RATE_MAX)
  @JsonPropertyDescription(
      "Highest share of the canary's requests that may fail with a server error (HTTP 5xx) for it"
          + " to be promoted; client errors (4xx) do not count. Default "
          + Bounds.CANARY_MAX_ERROR_RATE_DEFAULT
          + ".")
  public Double maxErrorRate;
}
