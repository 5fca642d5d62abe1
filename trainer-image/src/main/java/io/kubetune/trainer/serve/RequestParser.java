package io.kubetune.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.trainer.data.ChatTemplate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Turns OpenAI-style request bodies into validated parameters. Every refusal is a 400 naming the
 * field and what it accepts; unknown fields are ignored as OpenAI does, but fields whose
 * non-default values this server cannot honour ({@code n}, {@code best_of}, {@code echo}, {@code
 * suffix}) are refused rather than silently dropped. Pure.
 */
public final class RequestParser {
  /** OpenAI's limits: at most 4 stop strings, 5 completion logprobs, 20 chat top_logprobs. */
  static final int MAX_STOP = 4;

  static final int MAX_COMPLETION_LOGPROBS = 5;
  static final int MAX_CHAT_TOP_LOGPROBS = 20;

  /** OpenAI's default {@code max_tokens} for the legacy completions endpoint. */
  static final int DEFAULT_COMPLETION_MAX_TOKENS = 16;

  private RequestParser() {}

  public record Completion(GenerationParams params, String prompt) {}

  public record Chat(GenerationParams params, List<Message> messages) {}

  public record Message(String role, String content) {}

  public record Classify(String model, List<String> inputs) {}

  public static Completion completion(JsonNode body) {
    requireObject(body);
    JsonNode prompt = body.get("prompt");
    String text;
    if (prompt != null && prompt.isTextual()) {
      text = prompt.asText();
    } else if (prompt != null
        && prompt.isArray()
        && prompt.size() == 1
        && prompt.get(0).isTextual()) {
      text = prompt.get(0).asText();
    } else if (prompt != null && prompt.isArray() && prompt.size() > 1) {
      throw ApiException.badRequest(
          "prompt", "prompt: send one prompt per request (batches of prompts are not supported)");
    } else {
      throw ApiException.badRequest("prompt", "prompt: required, a string");
    }
    refuseUnsupported(body, "echo", false);
    refuseUnsupported(body, "suffix", null);
    refuseUnsupported(body, "best_of", 1);
    Integer logprobs = optionalInt(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS);
    return new Completion(
        common(body, optionalInt(body, "max_tokens", 1, Integer.MAX_VALUE), logprobs, true), text);
  }

  public static Chat chat(JsonNode body) {
    requireObject(body);
    JsonNode messages = body.get("messages");
    if (messages == null || !messages.isArray() || messages.isEmpty()) {
      throw ApiException.badRequest(
          "messages", "messages: required, a non-empty list of {role, content}");
    }
    List<Message> parsed = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      JsonNode m = messages.get(i);
      String field = "messages[" + i + "]";
      String role = m.path("role").asText("");
      if (!ChatTemplate.ROLES.contains(role)) {
        throw ApiException.badRequest(
            field + ".role", field + ".role: must be one of system, user, assistant");
      }
      parsed.add(new Message(role, content(m.get("content"), field + ".content")));
    }
    Integer maxTokens = optionalInt(body, "max_completion_tokens", 1, Integer.MAX_VALUE);
    if (maxTokens == null) {
      maxTokens = optionalInt(body, "max_tokens", 1, Integer.MAX_VALUE);
    }
    Integer logprobs = null;
    JsonNode wantLogprobs = body.get("logprobs");
    if (wantLogprobs != null && !wantLogprobs.isNull() && !wantLogprobs.isBoolean()) {
      throw ApiException.badRequest("logprobs", "logprobs: must be true or false");
    }
    Integer top = optionalInt(body, "top_logprobs", 0, MAX_CHAT_TOP_LOGPROBS);
    if (wantLogprobs != null && wantLogprobs.asBoolean()) {
      logprobs = top == null ? 0 : top;
    } else if (top != null) {
      throw ApiException.badRequest(
          "top_logprobs", "top_logprobs: set logprobs to true to receive top_logprobs");
    }
    return new Chat(common(body, maxTokens, logprobs, false), parsed);
  }

  public static Classify classify(JsonNode body) {
    requireObject(body);
    String model = model(body);
    JsonNode input = body.get("input");
    List<String> inputs = new ArrayList<>();
    if (input != null && input.isTextual()) {
      inputs.add(input.asText());
    } else if (input != null && input.isArray() && !input.isEmpty()) {
      for (int i = 0; i < input.size(); i++) {
        if (!input.get(i).isTextual()) {
          throw ApiException.badRequest("input", "input[" + i + "]: must be a string");
        }
        inputs.add(input.get(i).asText());
      }
    } else {
      throw ApiException.badRequest("input", "input: required, a string or a list of strings");
    }
    return new Classify(model, inputs);
  }

  private static GenerationParams common(
      JsonNode body, Integer maxTokens, Integer logprobs, boolean completion) {
    String model = model(body);
    refuseUnsupported(body, "n", 1);
    double temperature = optionalNumber(body, "temperature", 0, 2, 1.0);
    double topP = optionalNumber(body, "top_p", 0, 1, 1.0);
    if (topP == 0) {
      throw ApiException.badRequest("top_p", "top_p: must be greater than 0 and at most 1");
    }
    List<String> stop = new ArrayList<>();
    JsonNode s = body.get("stop");
    if (s != null && s.isTextual()) {
      stop.add(s.asText());
    } else if (s != null && s.isArray()) {
      for (JsonNode item : s) {
        if (!item.isTextual()) {
          throw ApiException.badRequest("stop", "stop: must be a string or a list of strings");
        }
        stop.add(item.asText());
      }
    } else if (s != null && !s.isNull()) {
      throw ApiException.badRequest("stop", "stop: must be a string or a list of strings");
    }
    if (stop.size() > MAX_STOP || stop.stream().anyMatch(String::isEmpty)) {
      throw ApiException.badRequest(
          "stop", "stop: at most " + MAX_STOP + " non-empty strings are allowed");
    }
    JsonNode seedNode = body.get("seed");
    long seed;
    if (seedNode == null || seedNode.isNull()) {
      seed = ThreadLocalRandom.current().nextLong();
    } else if (seedNode.isIntegralNumber() && seedNode.canConvertToLong()) {
      seed = seedNode.asLong();
    } else {
      throw ApiException.badRequest("seed", "seed: must be an integer");
    }
    boolean stream = optionalBoolean(body, "stream");
    boolean includeUsage = stream && body.path("stream_options").path("include_usage").asBoolean();
    if (completion && maxTokens == null) {
      maxTokens = DEFAULT_COMPLETION_MAX_TOKENS;
    }
    return new GenerationParams(
        model, maxTokens, temperature, topP, stop, seed, logprobs, stream, includeUsage);
  }

  private static void requireObject(JsonNode body) {
    if (body == null || !body.isObject()) {
      throw ApiException.badRequest(null, "the request body must be a JSON object");
    }
  }

  private static String model(JsonNode body) {
    JsonNode model = body.get("model");
    if (model == null || !model.isTextual() || model.asText().isBlank()) {
      throw ApiException.badRequest(
          "model", "model: required, the id of the base model or an adapter (GET /v1/models)");
    }
    return model.asText();
  }

  /** Chat content: a string, or OpenAI's list of parts of which only text parts are accepted. */
  private static String content(JsonNode content, String field) {
    if (content != null && content.isTextual()) {
      return content.asText();
    }
    if (content != null && content.isArray()) {
      StringBuilder text = new StringBuilder();
      for (JsonNode part : content) {
        if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
          throw ApiException.badRequest(
              field,
              field + ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
        }
        text.append(part.get("text").asText());
      }
      return text.toString();
    }
    throw ApiException.badRequest(field, field + ": required, a string");
  }

  private static Integer optionalInt(JsonNode body, String field, int min, int max) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isIntegralNumber() || !value.canConvertToInt()) {
      throw ApiException.badRequest(field, field + ": must be an integer" + range(min, max));
    }
    int v = value.asInt();
    if (v < min || v > max) {
      throw ApiException.badRequest(field, field + ": " + v + " is out of range" + range(min, max));
    }
    return v;
  }

  private static String range(int min, int max) {
    return max == Integer.MAX_VALUE ? " of at least " + min : " from " + min + " to " + max;
  }

  private static double optionalNumber(
      JsonNode body, String field, double min, double max, double fallback) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return fallback;
    }
    if (!value.isNumber() || value.asDouble() < min || value.asDouble() > max) {
      throw ApiException.badRequest(
          field, field + ": must be a number from " + trim(min) + " to " + trim(max));
    }
    return value.asDouble();
  }

  private static String trim(double d) {
    return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
  }

  private static boolean optionalBoolean(JsonNode body, String field) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return false;
    }
    if (!value.isBoolean()) {
      throw ApiException.badRequest(field, field + ": must be true or false");
    }
    return value.asBoolean();
  }

  /** Refuses a field whose value differs from the only one this server implements. */
  private static void refuseUnsupported(JsonNode body, String field, Object supported) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return;
    }
    boolean ok =
        supported instanceof Integer i
            ? value.isIntegralNumber() && value.asInt() == i
            : supported instanceof Boolean b
                ? value.isBoolean() && value.asBoolean() == b
                : supported == null && value.isTextual() && value.asText().isEmpty();
    if (!ok) {
      throw ApiException.badRequest(
          field,
          field
              + ": "
              + (supported == null ? "is not supported" : "only " + supported + " is supported")
              + " by this server; remove it from the request");
    }
  }
}
