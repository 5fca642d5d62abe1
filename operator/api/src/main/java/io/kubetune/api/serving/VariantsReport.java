package io.kubetune.api.serving;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The body of a serving pod's {@code GET /v1/variants}: what each variant (the stable adapter and,
 * during a canary, the canary) of each served model did on that pod since it became ready. The
 * server writes it with this class and the operator parses it with this class (one writer, one
 * parser); the operator sums it over the ready pods to decide a canary.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public class VariantsReport {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Variant labels. */
  public static final String STABLE = "stable";

  public static final String CANARY = "canary";

  public String object = "list";

  /** The pod's name (its HOSTNAME), when known. */
  public String pod;

  public List<Variant> data = new ArrayList<>();

  /** One variant of one model. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Variant {
    /** The model name clients ask for (without a variant suffix). */
    public String model;

    /** {@value #STABLE} or {@value #CANARY}. */
    public String variant;

    /** SHA-256 of the adapter's weights; null (written as null) for a base model. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public String sha256;

    /** Percent of the model's requests this variant answers. */
    public int weight;

    /** When this pod started counting (RFC 3339). */
    public String since;

    /** Requests this variant computed. */
    public long requests;

    /** Of those, server errors (HTTP 5xx). */
    public long errors;

    /** Of those, client errors (HTTP 4xx). */
    @JsonProperty("client_errors")
    public long clientErrors;

    @JsonProperty("error_rate")
    public double errorRate;

    @JsonProperty("latency_seconds_sum")
    public double latencySecondsSum;

    public Feedback feedback;
  }

  /** Feedback given for a variant's answers. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Feedback {
    public long scores;

    @JsonProperty("score_sum")
    public double scoreSum;

    /** Mean of every score; null before the first. */
    @JsonProperty("score_mean")
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public Double scoreMean;

    /** Mean of the recent scores; null before the first. */
    @JsonProperty("recent_score_mean")
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public Double recentScoreMean;

    public long corrections;
  }

  /** Parses a body; a body that is not a report throws {@link IllegalArgumentException}. */
  public static VariantsReport parse(String body) {
    try {
      VariantsReport report = JSON.readValue(body, VariantsReport.class);
      if (report == null || report.data == null) {
        throw new IllegalArgumentException("not a /v1/variants report: no data");
      }
      return report;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException("not a /v1/variants report: " + e.getOriginalMessage(), e);
    }
  }

  /** The JSON text of this report. */
  public String toJson() {
    try {
      return JSON.writeValueAsString(this);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }
}
