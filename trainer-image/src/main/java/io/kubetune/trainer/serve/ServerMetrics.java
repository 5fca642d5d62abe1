package io.kubetune.trainer.serve;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The server's Prometheus metrics ({@code GET /metrics}): requests by endpoint, model and status,
 * request latency, time to first token, tokens in and out, and the queue. Model tags are limited to
 * the served ids so a client cannot grow the series with made-up names.
 */
public final class ServerMetrics {
  private final PrometheusMeterRegistry registry =
      new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private volatile Set<String> knownModels = Set.of();

  public void knownModels(Set<String> ids) {
    knownModels = Set.copyOf(ids);
  }

  public void queue(Supplier<Number> queued, Supplier<Number> running) {
    Gauge.builder("kubetune.serve.queue.depth", () -> queued.get().doubleValue())
        .description("Requests waiting for a worker")
        .register(registry);
    Gauge.builder("kubetune.serve.requests.running", () -> running.get().doubleValue())
        .description("Requests being computed")
        .register(registry);
  }

  public void request(String endpoint, String model, int status, Duration duration) {
    String m = tag(model);
    Counter.builder("kubetune.serve.requests")
        .description("HTTP API requests by endpoint, model and status code")
        .tags("endpoint", endpoint, "model", m, "status", Integer.toString(status))
        .register(registry)
        .increment();
    Timer.builder("kubetune.serve.request.duration")
        .description("Time from request to the last byte of the response")
        .tags("endpoint", endpoint, "model", m)
        .publishPercentileHistogram()
        .register(registry)
        .record(duration);
  }

  public void tokens(String model, int prompt, int generated) {
    String m = tag(model);
    Counter.builder("kubetune.serve.tokens.prompt")
        .tags("model", m)
        .register(registry)
        .increment(prompt);
    Counter.builder("kubetune.serve.tokens.generated")
        .tags("model", m)
        .register(registry)
        .increment(generated);
  }

  public void firstToken(String model, Duration sinceRequest) {
    Timer.builder("kubetune.serve.time.to.first.token")
        .description("Time from request to the first generated text")
        .tags("model", tag(model))
        .publishPercentileHistogram()
        .register(registry)
        .record(sinceRequest);
  }

  /**
   * The series of one variant, read from its {@link Variants.Stats} (the one count both {@code
   * /metrics} and {@code GET /v1/variants} report): requests, server and client errors, and the
   * feedback (scores, their sum, the mean of all and of the recent ones, corrections). Labels
   * model, variant (stable/canary) and adapter_digest ({@code none} for the base model).
   */
  public void variant(Variants.Stats stats) {
    Tags tags = variantTags(stats);
    counter(
        "kubetune.serve.variant.requests",
        "Requests a variant computed (reached a worker), by model/variant/adapter",
        tags,
        stats,
        Variants.Stats::requests);
    counter(
        "kubetune.serve.variant.errors",
        "Of those, requests that ended in a server error (5xx)",
        tags,
        stats,
        Variants.Stats::errors);
    counter(
        "kubetune.serve.variant.client.errors",
        "Of those, requests refused as the client's mistake (4xx)",
        tags,
        stats,
        Variants.Stats::clientErrors);
    counter(
        "kubetune.serve.feedback.scores",
        "Feedback scores received for a variant's answers (POST /v1/feedback)",
        tags,
        stats,
        Variants.Stats::scores);
    counter(
        "kubetune.serve.feedback.score.sum",
        "Sum of those scores (with the count: a mean over any window in PromQL)",
        tags,
        stats,
        Variants.Stats::scoreSum);
    counter(
        "kubetune.serve.feedback.corrections",
        "Corrected answers received for a variant's answers",
        tags,
        stats,
        Variants.Stats::corrections);
    Gauge.builder("kubetune.serve.feedback.score.mean", stats, Variants.Stats::scoreMean)
        .description("Running mean of every feedback score since the server started (NaN: none)")
        .tags(tags)
        .register(registry);
    Gauge.builder(
            "kubetune.serve.feedback.score.recent.mean", stats, Variants.Stats::recentScoreMean)
        .description(
            "Mean of the last " + Variants.RECENT_FEEDBACK + " feedback scores (NaN: none)")
        .tags(tags)
        .register(registry);
  }

  private void counter(
      String name,
      String description,
      Tags tags,
      Variants.Stats stats,
      java.util.function.ToDoubleFunction<Variants.Stats> count) {
    FunctionCounter.builder(name, stats, count)
        .description(description)
        .tags(tags)
        .register(registry);
  }

  /** Latency of one request a variant computed. */
  public void variantLatency(Variants.Stats stats, Duration duration) {
    Timer.builder("kubetune.serve.variant.request.duration")
        .description("Time from request to the last byte, by model/variant/adapter")
        .tags(variantTags(stats))
        .publishPercentileHistogram()
        .register(registry)
        .record(duration);
  }

  private static Tags variantTags(Variants.Stats stats) {
    return Tags.of(
        "model",
        stats.model(),
        "variant",
        stats.variant().label(),
        "adapter_digest",
        stats.digest() == null ? "none" : stats.digest());
  }

  public String scrape() {
    return registry.scrape();
  }

  private String tag(String model) {
    return model != null && knownModels.contains(model) ? model : "other";
  }
}
