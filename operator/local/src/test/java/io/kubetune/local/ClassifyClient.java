package io.kubetune.local;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * A client that sends {@code POST /v1/classify} for one model to a serving Service's endpoint
 * without pause, from its own thread, and records every answer (status, {@code KubeTune-Variant},
 * {@code KubeTune-Adapter-Digest}) until closed.
 */
final class ClassifyClient implements AutoCloseable {
  static final String TICKET = "I was charged twice for my subscription this month";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  /** One answer; status 0 when no endpoint was ready or the connection failed. */
  record Answer(Instant at, int status, String variant, String digest, String error) {}

  /** Every answer so far, in order (take a {@code List.copyOf} before a subList). */
  final List<Answer> answers = new CopyOnWriteArrayList<>();

  private final AtomicBoolean stop = new AtomicBoolean();
  private final Thread thread;

  ClassifyClient(Supplier<Optional<String>> endpoint, String model) {
    thread =
        new Thread(
            () -> {
              while (!stop.get()) {
                answers.add(ask(endpoint.get().orElse(null), model));
              }
            },
            "classify-client");
    thread.start();
  }

  @Override
  public void close() throws InterruptedException {
    stop.set(true);
    thread.join(TimeUnit.SECONDS.toMillis(30));
  }

  private static Answer ask(String endpoint, String model) {
    Instant at = Instant.now();
    if (endpoint == null) {
      return new Answer(at, 0, null, null, "no ready endpoint");
    }
    try {
      HttpResponse<String> r =
          HTTP.send(
              HttpRequest.newBuilder(URI.create(endpoint + "/v1/classify"))
                  .header("Content-Type", "application/json")
                  .timeout(Duration.ofSeconds(30))
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          JSON.writeValueAsString(Map.of("model", model, "input", TICKET))))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      return new Answer(
          at,
          r.statusCode(),
          r.headers().firstValue("KubeTune-Variant").orElse(null),
          r.headers().firstValue("KubeTune-Adapter-Digest").orElse(null),
          r.statusCode() == 200 ? null : r.body());
    } catch (IOException e) {
      return new Answer(at, 0, null, null, e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Answer(at, 0, null, null, e.toString());
    }
  }
}
