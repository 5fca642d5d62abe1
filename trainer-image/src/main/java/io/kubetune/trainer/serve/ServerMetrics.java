package io.kubetune.trainer.serve;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
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

  public String scrape() {
    return registry.scrape();
  }

  private String tag(String model) {
    return model != null && knownModels.contains(model) ? model : "other";
  }
}
