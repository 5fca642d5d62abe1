package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.storage.FileDigest;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * A canary over real HTTP: kubetune-mini with a house-style adapter (the stable variant) and a
 * longer-trained house-style adapter as its canary at weight 10. Requests for the model split
 * exactly 10 in 100 to the canary, every answer names its variant and digest, each variant is
 * addressable, {@code GET /v1/variants} and {@code /metrics} count per variant, and feedback is
 * credited to the variant that answered.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CanaryServeTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  static final String MODEL = "house-style";

  @TempDir static Path dir;
  static OpenAiServer server;
  static ModelRepository repository;
  static String base;
  static String stableDigest;
  static String canaryDigest;

  /** Request ids answered in {@link #requestsForTheModelSplitByWeight}, by variant. */
  static final Map<String, List<String>> idsByVariant = new LinkedHashMap<>();

  @BeforeAll
  static void start() throws Exception {
    Path stable = ServeFixtures.houseStyleAdapter(dir.resolve("run-1"), 2);
    Path canary = ServeFixtures.houseStyleAdapter(dir.resolve("run-2"), 6);
    stableDigest = FileDigest.sha256(stable.resolve("adapter_model.safetensors"));
    canaryDigest = FileDigest.sha256(canary.resolve("adapter_model.safetensors"));
    assertThat(canaryDigest).isNotEqualTo(stableDigest);
    repository =
        ModelRepository.load(
            ServeFixtures.BASE.toString(),
            "kubetune-mini",
            List.of(
                new ModelRepository.AdapterSource(MODEL, stable.toString(), stableDigest),
                new ModelRepository.AdapterSource(
                    Variants.canaryId(MODEL), canary.toString(), canaryDigest)),
            StorageSettings.defaults(),
            dir.resolve("work"),
            QUIET);
    server =
        new OpenAiServer(
            new OpenAiServer.Settings("127.0.0.1", 0, 1, 8, 64 * 1024, 8, 512, 1000), QUIET);
    server.start();
    server.ready(repository, new Variants(repository, Map.of(MODEL, 10), Instant.now()));
    base = "http://127.0.0.1:" + server.port();
  }

  @AfterAll
  static void stop() {
    server.close();
    repository.close();
  }

  @Test
  @Order(1)
  void requestsForTheModelSplitByWeightAndNameTheirVariantAndDigest() throws Exception {
    List<String> order = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      HttpResponse<String> r = complete(MODEL, i % 2 == 0);
      assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
      String variant = r.headers().firstValue(OpenAiServer.VARIANT_HEADER).orElseThrow();
      String digest = r.headers().firstValue(OpenAiServer.DIGEST_HEADER).orElseThrow();
      assertThat(digest).isEqualTo(variant.equals("canary") ? canaryDigest : stableDigest);
      JsonNode body = JSON.readTree(r.body());
      // The response names the model the client asked for, whichever variant answered.
      assertThat(body.get("model").asText()).isEqualTo(MODEL);
      idsByVariant.computeIfAbsent(variant, v -> new ArrayList<>()).add(body.get("id").asText());
      order.add(variant);
    }
    assertThat(idsByVariant.get("canary")).hasSize(10);
    assertThat(idsByVariant.get("stable")).hasSize(90);
    // Spread evenly: every tenth request, not ten in a row.
    for (int i = 0; i < 100; i++) {
      assertThat(order.get(i)).as("request %d", i).isEqualTo(i % 10 == 9 ? "canary" : "stable");
    }
  }

  @Test
  @Order(2)
  void eachVariantIsAddressableOnItsOwnAndAnAbsentCanaryIsA404NamingTheFix() throws Exception {
    for (int i = 0; i < 3; i++) {
      assertThat(variantOf(complete(MODEL + ":canary", false))).isEqualTo("canary");
      assertThat(variantOf(complete(MODEL + ":stable", false))).isEqualTo("stable");
    }
    HttpResponse<String> none = complete("kubetune-mini:canary", false);
    assertThat(none.statusCode()).isEqualTo(404);
    assertThat(JSON.readTree(none.body()).at("/error/message").asText())
        .contains("'kubetune-mini' has no canary being served now")
        .contains("'kubetune-mini:stable'");
    HttpResponse<String> unknown = complete("nope:canary", false);
    assertThat(unknown.statusCode()).isEqualTo(404);
    assertThat(JSON.readTree(unknown.body()).at("/error/message").asText())
        .contains("house-style:canary", "house-style:stable");
    // The base model is its own stable variant, with no adapter digest.
    HttpResponse<String> plain = complete("kubetune-mini", false);
    assertThat(variantOf(plain)).isEqualTo("stable");
    assertThat(plain.headers().firstValue(OpenAiServer.DIGEST_HEADER)).isEmpty();
    assertThat(JSON.readTree(get("/v1/models/" + MODEL + ":stable").body()).get("sha256").asText())
        .isEqualTo(stableDigest);
    assertThat(JSON.readTree(get("/v1/models/" + MODEL + ":canary").body()).get("sha256").asText())
        .isEqualTo(canaryDigest);
  }

  @Test
  @Order(3)
  void aClientErrorIsCountedApartFromServerErrors() throws Exception {
    String tooLong = "x".repeat(20_000);
    HttpResponse<String> r =
        post(
            "/v1/completions",
            JSON.writeValueAsString(
                Map.of("model", MODEL + ":canary", "prompt", tooLong, "max_tokens", 1)));
    assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
    assertThat(variantOf(r)).isEqualTo("canary");
  }

  @Test
  @Order(4)
  void variantsReportsEachVariantsFactsForTheOperator() throws Exception {
    JsonNode data = JSON.readTree(get("/v1/variants").body()).get("data");
    Map<String, JsonNode> byId = new LinkedHashMap<>();
    data.forEach(v -> byId.put(v.get("model").asText() + "/" + v.get("variant").asText(), v));
    assertThat(byId).containsOnlyKeys("kubetune-mini/stable", MODEL + "/stable", MODEL + "/canary");
    JsonNode canary = byId.get(MODEL + "/canary");
    assertThat(canary.get("sha256").asText()).isEqualTo(canaryDigest);
    assertThat(canary.get("weight").asInt()).isEqualTo(10);
    assertThat(canary.get("requests").asLong()).isEqualTo(10 + 3 + 1);
    assertThat(canary.get("errors").asLong()).isZero();
    assertThat(canary.get("client_errors").asLong()).isEqualTo(1);
    assertThat(canary.get("error_rate").asDouble()).isZero();
    assertThat(Instant.parse(canary.get("since").asText())).isBefore(Instant.now());
    JsonNode stable = byId.get(MODEL + "/stable");
    assertThat(stable.get("weight").asInt()).isEqualTo(90);
    assertThat(stable.get("requests").asLong()).isEqualTo(90 + 3);
    assertThat(stable.get("sha256").asText()).isEqualTo(stableDigest);
    assertThat(byId.get("kubetune-mini/stable").get("sha256").isNull()).isTrue();
    assertThat(byId.get("kubetune-mini/stable").get("requests").asLong()).isEqualTo(1);
  }

  @Test
  @Order(5)
  void feedbackIsCreditedToTheVariantThatAnsweredAndShownAsARunningMean() throws Exception {
    List<String> canaryIds = idsByVariant.get("canary");
    List<String> stableIds = idsByVariant.get("stable");
    for (int i = 0; i < 4; i++) {
      HttpResponse<String> r = feedback(canaryIds.get(i), i < 3 ? 1.0 : 0.0, null);
      assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
      JsonNode body = JSON.readTree(r.body());
      assertThat(body.get("variant").asText()).isEqualTo("canary");
      assertThat(body.get("sha256").asText()).isEqualTo(canaryDigest);
    }
    assertThat(feedback(stableIds.get(0), 0.5, null).statusCode()).isEqualTo(200);
    assertThat(feedback(stableIds.get(1), null, "Sure thing! Here is how.").statusCode())
        .isEqualTo(200);

    JsonNode data = JSON.readTree(get("/v1/variants").body()).get("data");
    JsonNode canary = data.get(2).get("feedback");
    assertThat(canary.get("scores").asLong()).isEqualTo(4);
    assertThat(canary.get("score_mean").asDouble()).isEqualTo(0.75);
    JsonNode stable = data.get(1).get("feedback");
    assertThat(stable.get("score_mean").asDouble()).isEqualTo(0.5);
    assertThat(stable.get("corrections").asLong()).isEqualTo(1);
    assertThat(data.get(0).get("feedback").get("score_mean").isNull()).isTrue();

    String metrics = get("/metrics").body();
    String canaryLabels =
        "{adapter_digest=\"" + canaryDigest + "\",model=\"" + MODEL + "\",variant=\"canary\"}";
    String stableLabels =
        "{adapter_digest=\"" + stableDigest + "\",model=\"" + MODEL + "\",variant=\"stable\"}";
    assertThat(metrics)
        .contains("kubetune_serve_feedback_score_mean" + canaryLabels + " 0.75")
        .contains("kubetune_serve_feedback_score_recent_mean" + canaryLabels + " 0.75")
        .contains("kubetune_serve_feedback_scores_total" + canaryLabels + " 4.0")
        .contains("kubetune_serve_feedback_score_sum_total" + canaryLabels + " 3.0")
        .contains("kubetune_serve_feedback_score_mean" + stableLabels + " 0.5")
        .contains("kubetune_serve_feedback_corrections_total" + stableLabels + " 1.0")
        .contains("kubetune_serve_variant_requests_total" + canaryLabels + " 14.0")
        .contains("kubetune_serve_variant_client_errors_total" + canaryLabels + " 1.0")
        .contains("kubetune_serve_variant_errors_total" + canaryLabels + " 0.0")
        .contains("kubetune_serve_variant_requests_total" + stableLabels + " 93.0")
        .contains("kubetune_serve_variant_request_duration_seconds_count" + canaryLabels + " 14")
        .contains("kubetune_serve_variant_request_duration_seconds_bucket{adapter_digest=\"");
  }

  @Test
  @Order(6)
  void badFeedbackIsRefusedNamingTheFieldAndTheFix() throws Exception {
    String id = idsByVariant.get("canary").get(0);
    expectError(feedback(id, 1.0, null), 409, "id", "already has feedback");
    expectError(
        feedback("cmpl-nope", 1.0, null), 404, "id", "no request 'cmpl-nope' among the last 1000");
    String fresh = idsByVariant.get("canary").get(5);
    expectError(feedback(fresh, 1.5, null), 400, "score", "from 0 (wrong) to 1 (right)");
    expectError(feedback(fresh, -0.1, null), 400, "score", "from 0 (wrong) to 1 (right)");
    expectError(feedback(fresh, null, null), 400, "score", "give a score");
    expectError(
        post("/v1/feedback", "{\"id\":\"" + fresh + "\",\"score\":\"good\"}"),
        400,
        "score",
        "must be a number");
    expectError(
        post("/v1/feedback", "{\"id\":\"" + fresh + "\",\"score\":1,\"rating\":5}"),
        400,
        "rating",
        "not a field this server implements for /v1/feedback");
    expectError(post("/v1/feedback", "{\"score\":1}"), 400, "id", "id: required");
    expectError(
        post("/v1/feedback", "{\"id\":\"" + fresh + "\",\"correction\":\"\"}"),
        400,
        "correction",
        "non-empty string");
    // None of the refused calls counted: the fresh id still takes its one feedback.
    assertThat(feedback(fresh, 1.0, null).statusCode()).isEqualTo(200);
  }

  @Test
  @Order(7)
  void aRefusedRequestStillNamesTheVariantThatRefusedIt() throws Exception {
    // house-style is a generation adapter: classify refuses it, naming the variant.
    HttpResponse<String> r =
        post("/v1/classify", "{\"model\":\"" + MODEL + ":canary\",\"input\":\"x\"}");
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(variantOf(r)).isEqualTo("canary");
  }

  @Test
  @Order(8)
  void feedbackSentToAnotherReplicaIsCreditedToTheAdapterThatAnswered() throws Exception {
    // A second replica behind the same Service: same base and adapters, its own memory and counts.
    try (OpenAiServer podB =
        new OpenAiServer(
            new OpenAiServer.Settings("127.0.0.1", 0, 1, 8, 64 * 1024, 8, 512, 1000), QUIET)) {
      podB.start();
      podB.ready(repository, new Variants(repository, Map.of(MODEL, 10), Instant.now()));
      String b = "http://127.0.0.1:" + podB.port();
      // Answered by this pod (A), one of them by the canary, none seen by pod B.
      Map<String, String> answered = new LinkedHashMap<>();
      for (int i = 0; i < 10; i++) {
        HttpResponse<String> r = complete(i == 0 ? MODEL + ":canary" : MODEL, false);
        answered.put(JSON.readTree(r.body()).get("id").asText(), variantOf(r));
      }
      long canaryScoresOnA = feedbackOf(base, 2).get("scores").asLong();
      for (Map.Entry<String, String> e : answered.entrySet()) {
        HttpResponse<String> r = postTo(b, "/v1/feedback", feedbackBody(e.getKey(), 1.0));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode body = JSON.readTree(r.body());
        assertThat(body.get("variant").asText()).isEqualTo(e.getValue());
        assertThat(body.get("sha256").asText())
            .isEqualTo(e.getValue().equals("canary") ? canaryDigest : stableDigest);
      }
      assertThat(feedbackOf(b, 2).get("scores").asLong())
          .isEqualTo(answered.values().stream().filter("canary"::equals).count());
      assertThat(feedbackOf(b, 1).get("scores").asLong())
          .isEqualTo(answered.values().stream().filter("stable"::equals).count());
      // Counted by the replica that took it, once: pod A's counts did not move.
      assertThat(feedbackOf(base, 2).get("scores").asLong()).isEqualTo(canaryScoresOnA);
      String first = answered.keySet().iterator().next();
      HttpResponse<String> again = postTo(b, "/v1/feedback", feedbackBody(first, 0.0));
      expectError(again, 409, "id", "already has feedback");
    }
  }

  static JsonNode feedbackOf(String server, int row) throws Exception {
    HttpResponse<String> r =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(server + "/v1/variants")).build(),
            HttpResponse.BodyHandlers.ofString());
    return JSON.readTree(r.body()).get("data").get(row).get("feedback");
  }

  static String feedbackBody(String id, double score) throws Exception {
    return JSON.writeValueAsString(Map.of("id", id, "score", score));
  }

  static HttpResponse<String> postTo(String server, String path, String body) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(server + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static void expectError(HttpResponse<String> r, int status, String param, String message)
      throws Exception {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
    JsonNode error = JSON.readTree(r.body()).get("error");
    assertThat(error.get("param").asText()).isEqualTo(param);
    assertThat(error.get("message").asText()).contains(message);
  }

  static String variantOf(HttpResponse<String> r) {
    return r.headers().firstValue(OpenAiServer.VARIANT_HEADER).orElse(null);
  }

  static HttpResponse<String> feedback(String id, Double score, String correction)
      throws Exception {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("id", id);
    if (score != null) {
      body.put("score", score);
    }
    if (correction != null) {
      body.put("correction", correction);
    }
    return post("/v1/feedback", JSON.writeValueAsString(body));
  }

  static HttpResponse<String> complete(String model, boolean chat) throws Exception {
    return chat
        ? post(
            "/v1/chat/completions",
            "{\"model\":\""
                + model
                + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1}")
        : post(
            "/v1/completions",
            "{\"model\":\""
                + model
                + "\",\"prompt\":\""
                + ServeFixtures.HOUSE_STYLE_PROMPT
                + "\",\"max_tokens\":1,\"temperature\":0}");
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
