package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.kubetune.trainer.storage.StorageSettings;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * After SIGTERM the server reports not ready at once but keeps answering for its shutdown delay:
 * Kubernetes drops a terminating pod from the Service's endpoints only after it was told to stop,
 * and requests routed to it meanwhile must not fail.
 */
class ShutdownDelayTest {
  static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir Path dir;

  @Test
  void duringTheShutdownDelayReadinessIs503AndRequestsAreStillAnswered() throws Exception {
    PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
    try (ModelRepository repository =
        ModelRepository.load(
            ServeFixtures.BASE.toString(),
            "kubetune-mini",
            List.of(),
            StorageSettings.defaults(),
            dir,
            quiet)) {
      OpenAiServer server =
          new OpenAiServer(new OpenAiServer.Settings("127.0.0.1", 0, 1, 4, 64 * 1024), quiet);
      server.start();
      server.ready(repository);
      String base = "http://127.0.0.1:" + server.port();
      assertThat(get(base + "/health/ready").statusCode()).isEqualTo(200);

      Thread stopping =
          new Thread(() -> server.close(Duration.ofSeconds(3), Duration.ofSeconds(1)));
      stopping.start();
      await()
          .atMost(Duration.ofSeconds(2))
          .until(() -> get(base + "/health/ready").statusCode() == 503);
      assertThat(get(base + "/health/ready").body()).contains("shutting down");
      HttpResponse<String> answer =
          HTTP.send(
              HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                  .header("Content-Type", "application/json")
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          "{\"model\":\"kubetune-mini\",\"prompt\":\"Hi\",\"max_tokens\":2}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
      stopping.join(10_000);
      assertThat(stopping.isAlive()).isFalse();
    }
  }

  static HttpResponse<String> get(String url) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString());
  }
}
