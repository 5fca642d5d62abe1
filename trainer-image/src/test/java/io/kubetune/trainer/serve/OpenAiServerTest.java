package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import io.kubetune.trainer.storage.FileDigest;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The serve-mode HTTP API over real HTTP: the shipped pretrained example model as base, with a
 * house-style completion adapter and a support-ticket classifier trained in the set-up.
 */
class OpenAiServerTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

  @TempDir static Path dir;
  static OpenAiServer server;
  static ModelRepository repository;
  static String base;

  @BeforeAll
  static void start() throws Exception {
    Path style = ServeFixtures.houseStyleAdapter(dir.resolve("style"), 40);
    Path tickets = ServeFixtures.ticketClassifier(dir.resolve("tickets"), 30);
    repository =
        ModelRepository.load(
            ServeFixtures.BASE.toString(),
            "kubetune-mini",
            List.of(
                new ModelRepository.AdapterSource(
                    "house-style",
                    style.toString(),
                    FileDigest.sha256(style.resolve("adapter_model.safetensors"))),
                new ModelRepository.AdapterSource("tickets", tickets.toUri().toString(), null)),
            StorageSettings.defaults(),
            dir.resolve("work"),
            QUIET);
    server = new OpenAiServer(new OpenAiServer.Settings("127.0.0.1", 0, 1, 2, 64 * 1024), QUIET);
    server.start();
    server.ready(repository);
    base = "http://127.0.0.1:" + server.port();
  }

  @AfterAll
  static void stop() {
    server.close();
    repository.close();
  }

  @Test
  void modelsListsTheBaseAndEachAdapterWithItsTask() throws Exception {
    JsonNode models = JSON.readTree(get("/v1/models").body());
    assertThat(models.get("object").asText()).isEqualTo("list");
    assertThat(models.get("data")).hasSize(3);
    JsonNode baseModel = models.get("data").get(0);
    assertThat(baseModel.get("id").asText()).isEqualTo("kubetune-mini");
    assertThat(baseModel.get("parent").isNull()).isTrue();
    JsonNode style = models.get("data").get(1);
    assertThat(style.get("id").asText()).isEqualTo("house-style");
    assertThat(style.get("parent").asText()).isEqualTo("kubetune-mini");
    assertThat(style.get("task").asText()).isEqualTo("generation");
    assertThat(style.get("sha256").asText()).hasSize(64);
    JsonNode tickets = models.get("data").get(2);
    assertThat(tickets.get("task").asText()).isEqualTo("classification");
    assertThat(tickets.get("labels").toString()).contains("billing", "shipping");
  }

  @Test
  void theAdapterAnswersInTheStyleItLearnedAndTheBaseDoesNot() throws Exception {
    JsonNode tuned = completion("house-style", ServeFixtures.HOUSE_STYLE_PROMPT, 12);
    JsonNode plain = completion("kubetune-mini", ServeFixtures.HOUSE_STYLE_PROMPT, 12);
    String tunedText = tuned.at("/choices/0/text").asText();
    String baseText = plain.at("/choices/0/text").asText();
    System.out.printf("base: %s%ntuned: %s%n", baseText, tunedText);
    assertThat(tunedText).startsWith(" Sure thing!");
    assertThat(baseText).isNotEqualTo(tunedText).doesNotStartWith(" Sure thing!");
    assertThat(tuned.get("object").asText()).isEqualTo("text_completion");
    assertThat(tuned.at("/usage/completion_tokens").asInt()).isBetween(1, 12);
    assertThat(tuned.at("/usage/prompt_tokens").asInt()).isGreaterThan(5);
    assertThat(tuned.at("/choices/0/finish_reason").asText()).isIn("length", "stop");
  }

  @Test
  void streamingSendsTheSameTextAsServerSentEvents() throws Exception {
    String whole =
        completion("house-style", ServeFixtures.HOUSE_STYLE_PROMPT, 20)
            .at("/choices/0/text")
            .asText();
    HttpResponse<String> response =
        post(
            "/v1/completions",
            "{\"model\":\"house-style\",\"prompt\":\""
                + ServeFixtures.HOUSE_STYLE_PROMPT
                + "\",\"max_tokens\":20,\"temperature\":0,\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}");
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("content-type"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("text/event-stream"));
    List<JsonNode> events = new ArrayList<>();
    String[] blocks = response.body().split("\n\n");
    assertThat(blocks[blocks.length - 1]).isEqualTo("data: [DONE]");
    for (int i = 0; i < blocks.length - 1; i++) {
      assertThat(blocks[i]).startsWith("data: ");
      events.add(JSON.readTree(blocks[i].substring(6)));
    }
    StringBuilder text = new StringBuilder();
    events.stream()
        .filter(e -> e.get("choices").size() > 0)
        .forEach(e -> text.append(e.at("/choices/0/text").asText()));
    assertThat(events.size()).as("one event per token or so").isGreaterThan(3);
    assertThat(text.toString()).isEqualTo(whole);
    JsonNode usage = events.get(events.size() - 1);
    assertThat(usage.get("choices")).isEmpty();
    assertThat(usage.at("/usage/completion_tokens").asInt()).isPositive();
    assertThat(events.get(events.size() - 2).at("/choices/0/finish_reason").asText())
        .isIn("length", "stop");
  }

  @Test
  void textThatIsNotValidUtf8StillStreamsWhileItIsGenerated() throws Exception {
    // Byte 0xE5 forever: every token decodes to U+FFFD. All of them used to be held back as a
    // possibly incomplete UTF-8 sequence, so the stream sent its text only at the end.
    Path model =
        ServeFixtures.repeatingModel(
            dir.resolve("repeating"), ByteLevelBpeTokenizerJson.idOf("\u00e5"));
    try (ModelRepository repeating =
            ModelRepository.load(
                model.toString(),
                "repeating",
                List.of(),
                StorageSettings.defaults(),
                dir.resolve("work-repeating"),
                QUIET);
        OpenAiServer other =
            new OpenAiServer(new OpenAiServer.Settings("127.0.0.1", 0, 1, 1, 64 * 1024), QUIET)) {
      other.start();
      other.ready(repeating);
      HttpResponse<String> response =
          send(
              HttpRequest.newBuilder(
                      URI.create("http://127.0.0.1:" + other.port() + "/v1/completions"))
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          "{\"model\":\"repeating\",\"prompt\":\"hi\",\"max_tokens\":12,"
                              + "\"temperature\":0,\"stream\":true}"))
                  .build());
      assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
      List<String> deltas = new ArrayList<>();
      for (String block : response.body().split("\n\n")) {
        if (!block.equals("data: [DONE]")) {
          String text = JSON.readTree(block.substring(6)).at("/choices/0/text").asText("");
          if (!text.isEmpty()) {
            deltas.add(text);
          }
        }
      }
      assertThat(String.join("", deltas)).isEqualTo("\uFFFD".repeat(12));
      assertThat(deltas).as("sent token by token, not all at the end").hasSizeGreaterThan(6);
    }
  }

  @Test
  void chatCompletionsStreamWithTheAssistantRoleFirst() throws Exception {
    HttpResponse<String> plain =
        post(
            "/v1/chat/completions",
            "{\"model\":\"kubetune-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
                + "\"max_tokens\":8,\"temperature\":0.7,\"seed\":3}");
    assertThat(plain.statusCode()).isEqualTo(200);
    JsonNode body = JSON.readTree(plain.body());
    assertThat(body.get("object").asText()).isEqualTo("chat.completion");
    assertThat(body.at("/choices/0/message/role").asText()).isEqualTo("assistant");
    String content = body.at("/choices/0/message/content").asText();

    HttpResponse<String> stream =
        post(
            "/v1/chat/completions",
            "{\"model\":\"kubetune-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
                + "\"max_tokens\":8,\"temperature\":0.7,\"seed\":3,\"stream\":true}");
    String[] blocks = stream.body().split("\n\n");
    JsonNode first = JSON.readTree(blocks[0].substring(6));
    assertThat(first.get("object").asText()).isEqualTo("chat.completion.chunk");
    assertThat(first.at("/choices/0/delta/role").asText()).isEqualTo("assistant");
    StringBuilder streamed = new StringBuilder();
    for (int i = 0; i < blocks.length - 1; i++) {
      streamed.append(
          JSON.readTree(blocks[i].substring(6)).at("/choices/0/delta/content").asText(""));
    }
    assertThat(streamed.toString()).as("same seed, same text").isEqualTo(content);
  }

  @Test
  void stopStringsCutTheTextAndLogprobsDescribeEachToken() throws Exception {
    HttpResponse<String> response =
        post(
            "/v1/completions",
            "{\"model\":\"house-style\",\"prompt\":\""
                + ServeFixtures.HOUSE_STYLE_PROMPT
                + "\",\"max_tokens\":12,\"temperature\":0,\"stop\":[\"!\"],\"logprobs\":2}");
    JsonNode body = JSON.readTree(response.body());
    assertThat(body.at("/choices/0/text").asText()).isEqualTo(" Sure thing");
    assertThat(body.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    JsonNode logprobs = body.at("/choices/0/logprobs");
    assertThat(logprobs.get("tokens").size()).isEqualTo(logprobs.get("token_logprobs").size());
    for (JsonNode lp : logprobs.get("token_logprobs")) {
      assertThat(lp.asDouble()).isLessThanOrEqualTo(0.0);
    }
    assertThat(logprobs.get("top_logprobs").get(0).size()).isBetween(1, 2);
  }

  @Test
  void classifyReturnsALabelAndProbabilitiesForEachInput() throws Exception {
    HttpResponse<String> response =
        post(
            "/v1/classify",
            "{\"model\":\"tickets\",\"input\":[\"I was charged twice for my subscription\","
                + "\"the tracking number for order B7731 does not work\"]}");
    assertThat(response.statusCode()).isEqualTo(200);
    JsonNode data = JSON.readTree(response.body()).get("data");
    assertThat(data).hasSize(2);
    for (JsonNode item : data) {
      double sum = 0;
      for (JsonNode p : item.get("probabilities")) {
        sum += p.asDouble();
      }
      assertThat(sum).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-4));
      assertThat(item.get("probabilities").has(item.get("label").asText())).isTrue();
    }
  }

  @Test
  void badRequestsGetA4xxNamingTheFieldAndTheServerStaysUp() throws Exception {
    expectError(
        post("/v1/completions", "{\"model\":\"nope\",\"prompt\":\"x\"}"),
        404,
        "model",
        "house-style");
    expectError(
        post("/v1/completions", "{\"model\":\"house-style\"}"), 400, "prompt", "prompt: required");
    expectError(
        post("/v1/completions", "{\"model\":\"house-style\",\"prompt\":\"x\",\"temperature\":5}"),
        400,
        "temperature",
        "from 0 to 2");
    expectError(
        post("/v1/completions", "{\"model\":\"house-style\",\"prompt\":\"x\",\"max_tokens\":5000}"),
        400,
        "max_tokens",
        "set max_tokens to at most");
    expectError(
        post("/v1/completions", "{\"model\":\"house-style\",\"prompt\":\"x\",\"n\":3}"),
        400,
        "n",
        "only 1");
    expectError(post("/v1/completions", "{not json"), 400, null, "not valid JSON");
    expectError(
        post(
            "/v1/completions",
            "{\"model\":\"house-style\",\"prompt\":\"" + "word ".repeat(2000) + "\"}"),
        400,
        "prompt",
        "shorten the prompt");
    expectError(
        post("/v1/classify", "{\"model\":\"house-style\",\"input\":\"x\"}"),
        400,
        "model",
        "not a classification");
    expectError(
        post("/v1/completions", "{\"model\":\"tickets\",\"prompt\":\"x\"}"),
        400,
        "model",
        "/v1/classify");
    expectError(
        post(
            "/v1/chat/completions",
            "{\"model\":\"tickets\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}"),
        400,
        "messages[0].role",
        "system, user, assistant");
    assertThat(post("/v1/completions", "{\"prompt\":\"" + "x".repeat(70_000) + "\"}").statusCode())
        .isEqualTo(413);
    assertThat(get("/v1/nothing").statusCode()).isEqualTo(404);
    assertThat(get("/health/ready").statusCode()).isEqualTo(200);
  }

  @Test
  void aFullQueueAnswers429AtOnce() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch started = new CountDownLatch(1);
    // Requests of other tests may still be finishing: start from an idle server.
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> server.busy() == 0);
    // Occupy the single worker and both queue slots with requests that wait on the latch.
    for (int i = 0; i < 3; i++) {
      server.submit(
          () -> {
            started.countDown();
            try {
              release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          });
    }
    try {
      assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
      HttpResponse<String> response =
          post("/v1/completions", "{\"model\":\"house-style\",\"prompt\":\"hi\",\"max_tokens\":2}");
      expectError(response, 429, null, "busy");
      assertThat(response.headers().firstValue("retry-after")).hasValue("1");
      String metrics = get("/metrics").body();
      assertThat(metrics).contains("kubetune_serve_queue_depth 2.0");
      assertThat(metrics).contains("status=\"429\"");
    } finally {
      release.countDown();
    }
  }

  @Test
  void healthAndMetricsAreExposed() throws Exception {
    completion("house-style", "hello", 3);
    // Time to first token is measured on streams (a plain response has no first token to see).
    post(
        "/v1/completions",
        "{\"model\":\"house-style\",\"prompt\":\"hello\",\"max_tokens\":3,\"stream\":true}");
    assertThat(get("/health/live").statusCode()).isEqualTo(200);
    JsonNode ready = JSON.readTree(get("/health/ready").body());
    assertThat(ready.get("status").asText()).isEqualTo("UP");
    String metrics = get("/metrics").body();
    assertThat(metrics)
        .contains(
            "kubetune_serve_requests_total{endpoint=\"completions\",model=\"house-style\",status=\"200\"}")
        .contains("kubetune_serve_tokens_generated_total{model=\"house-style\"}")
        .contains("kubetune_serve_request_duration_seconds_bucket")
        .contains("kubetune_serve_time_to_first_token_seconds_count");
  }

  @Test
  void readinessIsDownUntilTheModelsAreLoaded() throws Exception {
    try (OpenAiServer loading =
        new OpenAiServer(new OpenAiServer.Settings("127.0.0.1", 0, 1, 1, 1024), QUIET)) {
      loading.start();
      String url = "http://127.0.0.1:" + loading.port();
      assertThat(
              send(HttpRequest.newBuilder(URI.create(url + "/health/live")).build()).statusCode())
          .isEqualTo(200);
      HttpResponse<String> ready =
          send(HttpRequest.newBuilder(URI.create(url + "/health/ready")).build());
      assertThat(ready.statusCode()).isEqualTo(503);
      assertThat(ready.body()).contains("loading");
      HttpResponse<String> early =
          send(
              HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                  .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"m\",\"prompt\":\"x\"}"))
                  .build());
      assertThat(early.statusCode()).isEqualTo(503);
    }
  }

  static JsonNode completion(String model, String prompt, int maxTokens) throws Exception {
    HttpResponse<String> response =
        post(
            "/v1/completions",
            JSON.writeValueAsString(
                java.util.Map.of(
                    "model", model, "prompt", prompt, "max_tokens", maxTokens, "temperature", 0)));
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    return JSON.readTree(response.body());
  }

  static void expectError(HttpResponse<String> response, int status, String param, String message)
      throws Exception {
    assertThat(response.statusCode()).as(response.body()).isEqualTo(status);
    JsonNode error = JSON.readTree(response.body()).get("error");
    assertThat(error.get("message").asText()).contains(message);
    if (param != null) {
      assertThat(error.get("param").asText()).isEqualTo(param);
    }
  }

  static HttpResponse<String> get(String path) throws Exception {
    return send(HttpRequest.newBuilder(URI.create(base + path)).build());
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return send(
        HttpRequest.newBuilder(URI.create(base + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build());
  }

  static HttpResponse<String> send(HttpRequest request) throws Exception {
    return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
  }
}
