package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The parts of the OpenAI API surface that live in the server, over real HTTP and quicker than
 * {@link OpenAiServerTest}: the shipped kubetune-mini base and a briefly trained ticket classifier,
 * served with small classify limits.
 */
class ServeApiTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  static final int MAX_INPUTS = 3;
  static final int MAX_TOKENS = 40;

  @TempDir static Path dir;
  static OpenAiServer server;
  static ModelRepository repository;
  static String base;

  @BeforeAll
  static void start() throws Exception {
    Path tickets = ServeFixtures.ticketClassifier(dir.resolve("tickets"), 2);
    repository =
        ModelRepository.load(
            ServeFixtures.BASE.toString(),
            "kubetune-mini",
            List.of(new ModelRepository.AdapterSource("tickets", tickets.toString(), null)),
            StorageSettings.defaults(),
            dir.resolve("work"),
            QUIET);
    server =
        new OpenAiServer(
            new OpenAiServer.Settings("127.0.0.1", 0, 1, 4, 64 * 1024, MAX_INPUTS, MAX_TOKENS),
            QUIET);
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
  void oneModelIsRetrievedByIdAndAnUnknownIdIsA404InOpenAisFormat() throws Exception {
    JsonNode list = JSON.readTree(get("/v1/models").body()).get("data");
    for (int i = 0; i < list.size(); i++) {
      String id = list.get(i).get("id").asText();
      HttpResponse<String> one = get("/v1/models/" + id);
      assertThat(one.statusCode()).as(one.body()).isEqualTo(200);
      assertThat(JSON.readTree(one.body())).isEqualTo(list.get(i));
    }
    assertThat(JSON.readTree(get("/v1/models/tickets").body()).get("task").asText())
        .isEqualTo("classification");
    for (String unknown : List.of("nope", "org/nope", "kubetune-mini%2Fx")) {
      HttpResponse<String> missing = get("/v1/models/" + unknown);
      assertThat(missing.statusCode()).as(unknown).isEqualTo(404);
      JsonNode error = JSON.readTree(missing.body()).get("error");
      assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
      assertThat(error.get("param").asText()).isEqualTo("model");
      assertThat(error.get("code").asText()).isEqualTo("model_not_found");
      assertThat(error.get("message").asText())
          .contains("'" + unknown.replace("%2F", "/") + "'")
          .contains("kubetune-mini", "tickets");
    }
  }

  @Test
  void aClassifyRequestOverTheInputOrTokenLimitIsRefusedNamingInputAndTheLimit() throws Exception {
    HttpResponse<String> small =
        post("/v1/classify", "{\"model\":\"tickets\",\"input\":[\"refund\",\"late\",\"login\"]}");
    assertThat(small.statusCode()).as(small.body()).isEqualTo(200);
    assertThat(JSON.readTree(small.body()).at("/usage/prompt_tokens").asInt())
        .isLessThanOrEqualTo(MAX_TOKENS);

    HttpResponse<String> many =
        post("/v1/classify", "{\"model\":\"tickets\",\"input\":[\"a\",\"b\",\"c\",\"d\"]}");
    expectError(many, 400, "input", "at most " + MAX_INPUTS + " per request");

    String longText = "my order arrived broken and nobody answers my emails about it ".repeat(3);
    HttpResponse<String> tooLong =
        post(
            "/v1/classify",
            JSON.writeValueAsString(
                java.util.Map.of("model", "tickets", "input", List.of(longText, "refund"))));
    expectError(
        tooLong, 400, "input", "at most " + MAX_TOKENS + " tokens per request (--max-classify");
    assertThat(get("/health/ready").statusCode()).isEqualTo(200);
  }

  @Test
  void aPromptOfTokenIdsIsServedLikeTheTextItEncodes() throws Exception {
    String text = ServeFixtures.HOUSE_STYLE_PROMPT;
    long[] ids =
        new Inference(repository.tokenizer())
            .completionPrompt(repository.get("kubetune-mini").model(), text);
    String idList = Arrays.stream(ids).mapToObj(Long::toString).collect(Collectors.joining(","));
    JsonNode fromText =
        ok(
            post(
                "/v1/completions",
                "{\"model\":\"kubetune-mini\",\"prompt\":"
                    + JSON.writeValueAsString(text)
                    + ",\"max_tokens\":8,\"temperature\":0}"));
    for (String prompt : List.of("[" + idList + "]", "[[" + idList + "]]")) {
      JsonNode fromIds =
          ok(
              post(
                  "/v1/completions",
                  "{\"model\":\"kubetune-mini\",\"prompt\":"
                      + prompt
                      + ",\"max_tokens\":8,\"temperature\":0}"));
      assertThat(fromIds.at("/choices/0/text").asText())
          .isEqualTo(fromText.at("/choices/0/text").asText());
      assertThat(fromIds.at("/usage/prompt_tokens").asInt()).isEqualTo(ids.length);
    }
    int vocabulary = repository.get("kubetune-mini").model().config().vocabSize();
    expectError(
        post(
            "/v1/completions",
            "{\"model\":\"kubetune-mini\",\"prompt\":[1," + vocabulary + "],\"max_tokens\":2}"),
        400,
        "prompt",
        "token id " + vocabulary + " (position 1) is not in the model's vocabulary");
  }

  @Test
  void streamedTextOffsetsContinueAcrossChunksAsInTheWholeAnswer() throws Exception {
    String request =
        "{\"model\":\"kubetune-mini\",\"prompt\":\"The order\",\"max_tokens\":12,"
            + "\"temperature\":0,\"logprobs\":1";
    JsonNode whole = ok(post("/v1/completions", request + "}"));
    List<Integer> expected = new ArrayList<>();
    whole.at("/choices/0/logprobs/text_offset").forEach(o -> expected.add(o.asInt()));
    HttpResponse<String> stream = post("/v1/completions", request + ",\"stream\":true}");
    assertThat(stream.statusCode()).as(stream.body()).isEqualTo(200);
    List<Integer> streamed = new ArrayList<>();
    int chunksWithLogprobs = 0;
    for (String block : stream.body().split("\n\n")) {
      if (block.equals("data: [DONE]")) {
        continue;
      }
      JsonNode offsets = JSON.readTree(block.substring(6)).at("/choices/0/logprobs/text_offset");
      if (offsets.isArray() && !offsets.isEmpty()) {
        chunksWithLogprobs++;
        offsets.forEach(o -> streamed.add(o.asInt()));
      }
    }
    assertThat(chunksWithLogprobs).as("several chunks carry logprobs").isGreaterThan(3);
    assertThat(expected).hasSize(12);
    assertThat(streamed).isEqualTo(expected);
    assertThat(streamed).isSorted().doesNotHaveDuplicates();
  }

  @Test
  void chatTakesADeveloperMessageAsSystemAndAnAssistantMessageWithoutContent() throws Exception {
    String tail =
        "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":%s},"
            + "{\"role\":\"user\",\"content\":\"Again\"}],\"max_tokens\":6,\"temperature\":0}";
    JsonNode developer =
        ok(
            post(
                "/v1/chat/completions",
                "{\"model\":\"kubetune-mini\",\"messages\":[{\"role\":\"developer\",\"content\":"
                    + "\"Be brief.\"},"
                    + tail.formatted("null")));
    JsonNode system =
        ok(
            post(
                "/v1/chat/completions",
                "{\"model\":\"kubetune-mini\",\"messages\":[{\"role\":\"system\",\"content\":"
                    + "\"Be brief.\"},"
                    + tail.formatted("\"\"")));
    assertThat(developer.at("/usage/prompt_tokens").asInt())
        .isEqualTo(system.at("/usage/prompt_tokens").asInt());
    assertThat(developer.at("/choices/0/message/content").asText())
        .isEqualTo(system.at("/choices/0/message/content").asText());
  }

  @Test
  void anUnimplementedFieldIsA400NamingItAndTheServerStaysUp() throws Exception {
    expectError(
        post(
            "/v1/chat/completions",
            "{\"model\":\"kubetune-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                + "\"response_format\":{\"type\":\"json_object\"}}"),
        400,
        "response_format",
        "response_format:");
    expectError(
        post("/v1/completions", "{\"model\":\"kubetune-mini\",\"prompt\":\"x\",\"top_k\":3}"),
        400,
        "top_k",
        "not a field this server implements");
    assertThat(get("/health/ready").statusCode()).isEqualTo(200);
  }

  static JsonNode ok(HttpResponse<String> response) throws Exception {
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    return JSON.readTree(response.body());
  }

  static void expectError(HttpResponse<String> response, int status, String param, String message)
      throws Exception {
    assertThat(response.statusCode()).as(response.body()).isEqualTo(status);
    JsonNode error = JSON.readTree(response.body()).get("error");
    assertThat(error.get("message").asText()).contains(message);
    assertThat(error.get("param").asText()).isEqualTo(param);
  }

  static HttpResponse<String> get(String path) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(base + path)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(base + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
