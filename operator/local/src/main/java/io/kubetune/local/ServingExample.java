package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.v1alpha1.DatasetFields;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Names;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * The example request local mode sends to the served adapter once the FineTuneJob is Serving: one
 * held-out record of the job's own dataset, through the endpoint the Service routes to, printed as
 * a curl command and its answer next to what the data says the answer should be.
 */
final class ServingExample {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ServingExample() {}

  /** Sends the request and prints it; returns the response body, or null when it failed. */
  static String run(
      FineTuneJob job,
      Optional<String> endpoint,
      Map<String, Path> claims,
      Path root,
      PrintStream out) {
    // Phase Serving means the Deployment reported a ready replica, which the endpoint routes to.
    out.println();
    if (endpoint.isEmpty()) {
      out.println("error: no ready serving pod behind service " + Names.servingService(job));
      return null;
    }
    DatasetSpec dataset = job.getSpec().dataset;
    JsonNode record = sampleRecord(dataset, claims, root);
    DatasetFields fields = dataset.fields == null ? new DatasetFields() : dataset.fields;
    String model = job.getMetadata().getName();
    ObjectNode body = JSON.createObjectNode().put("model", model);
    String path;
    String expected;
    DatasetSpec.Format format =
        dataset.format == null ? DatasetSpec.Format.completion : dataset.format;
    switch (format) {
      case classification -> {
        path = "/v1/classify";
        body.put(
            "input", text(record, or(fields.text, "text"), "the checkout page shows an error"));
        expected = "label " + text(record, or(fields.label, "label"), "?");
      }
      case chat -> {
        path = "/v1/chat/completions";
        JsonNode messages = record == null ? null : record.get(or(fields.messages, "messages"));
        var list = body.putArray("messages");
        expected = "";
        if (messages != null && messages.isArray()) {
          for (JsonNode m : messages) {
            if ("assistant".equals(m.path("role").asText())) {
              expected = m.path("content").asText();
              break;
            }
            list.add(m);
          }
        }
        if (list.isEmpty()) {
          list.addObject().put("role", "user").put("content", "Hello!");
        }
        body.put("max_tokens", 64).put("temperature", 0);
      }
      default -> {
        path = "/v1/completions";
        body.put("prompt", text(record, or(fields.prompt, "prompt"), "Hello"));
        body.put("max_tokens", 64).put("temperature", 0);
        expected = text(record, or(fields.completion, "completion"), "");
      }
    }
    String url = endpoint.get() + path;
    out.println("example request to the served adapter (a held-out record of the dataset):");
    out.println("  $ curl -s " + url + " -H 'Content-Type: application/json' \\");
    out.println("      -d '" + body.toString().replace("'", "'\\''") + "'");
    out.println(
        "  (on a cluster the same request goes to "
            + Names.servingEndpoint(job) // the OpenAI base URL, already ending in /v1
            + path.substring("/v1".length())
            + ")");
    try {
      HttpResponse<String> response =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create(url))
                      .timeout(Duration.ofSeconds(60))
                      .header("Content-Type", "application/json")
                      .POST(HttpRequest.BodyPublishers.ofString(body.toString()))
                      .build(),
                  HttpResponse.BodyHandlers.ofString());
      out.println("  HTTP " + response.statusCode());
      out.println(indent(pretty(response.body())));
      if (!expected.isEmpty()) {
        out.println("  expected from the data: " + oneLine(expected));
      }
      return response.statusCode() == 200 ? response.body() : null;
    } catch (IOException e) {
      out.println("error: the served model did not answer: " + e);
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /** The first record of the validation file (else the training file), when it is local. */
  static JsonNode sampleRecord(DatasetSpec dataset, Map<String, Path> claims, Path root) {
    String uri = dataset.validation != null ? dataset.validation : dataset.train;
    Path file = localFile(uri, claims, root);
    if (file == null || !Files.isRegularFile(file)) {
      return null;
    }
    try (BufferedReader reader = Files.newBufferedReader(file)) {
      String line;
      while ((line = reader.readLine()) != null) {
        if (!line.isBlank()) {
          return JSON.readTree(line);
        }
      }
    } catch (IOException e) {
      // no sample: the request uses a fixed text
    }
    return null;
  }

  /** pvc:// through the local claim folders; s3://kubetune-examples/ is the examples/ folder. */
  static Path localFile(String uri, Map<String, Path> claims, Path root) {
    if (uri == null) {
      return null;
    }
    String examplesBucket = "s3://" + KubeTuneLocal.EXAMPLES_CLAIM + "/";
    if (uri.startsWith(examplesBucket)) {
      return root.resolve("examples").resolve(uri.substring(examplesBucket.length()));
    }
    if (uri.startsWith("pvc://")) {
      String rest = uri.substring("pvc://".length());
      int slash = rest.indexOf('/');
      if (slash < 0) {
        return null;
      }
      Path claim = claims.get(rest.substring(0, slash));
      return claim == null ? null : claim.resolve(rest.substring(slash + 1));
    }
    return null;
  }

  private static String or(String value, String fallback) {
    return value == null ? fallback : value;
  }

  private static String text(JsonNode record, String field, String fallback) {
    return record != null && record.path(field).isTextual() ? record.get(field).asText() : fallback;
  }

  private static String pretty(String body) {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(JSON.readTree(body));
    } catch (IOException e) {
      return body;
    }
  }

  private static String indent(String text) {
    return "  " + text.replace("\n", "\n  ");
  }

  private static String oneLine(String text) {
    String line = text.replace("\n", "\\n");
    return line.length() > 200 ? line.substring(0, 200) + "…" : line;
  }
}
