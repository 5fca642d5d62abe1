package io.kubetune.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.trainer.data.ChatTemplate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Predicate;

/**
 * Turns OpenAI-style request bodies into validated parameters. Every refusal is a 400 naming the
 * field and what it accepts. Each endpoint has an allow-list of fields ({@link #COMPLETION_FIELDS},
 * {@link #CHAT_FIELDS}, {@link #CLASSIFY_FIELDS}): a field outside it is refused rather than
 * silently ignored, and fields this server cannot honour ({@code n}, {@code best_of}, {@code echo},
 * {@code suffix}, penalties, {@code logit_bias}, {@code response_format}, tools and functions) are
 * accepted only with their default value, which changes nothing. A JSON {@code null} is the same as
 * leaving a field out. Pure.
 */
public final class RequestParser {
  /** OpenAI's limits: at most 4 stop strings, 5 completion logprobs, 20 chat top_logprobs. */
  static final int MAX_STOP = 4;

  static final int MAX_COMPLETION_LOGPROBS = 5;
  static final int MAX_CHAT_TOP_LOGPROBS = 20;

  /** OpenAI's default {@code max_tokens} for the legacy completions endpoint. */
  static final int DEFAULT_COMPLETION_MAX_TOKENS = 16;

  /**
   * Fields of {@code POST /v1/completions} (OpenAI's CreateCompletionRequest). {@code user} is
   * accepted and has no effect (an end-user id for the provider's abuse monitoring).
   */
  static final Set<String> COMPLETION_FIELDS =
      Set.of(
          "model",
          "prompt",
          "max_tokens",
          "temperature",
          "top_p",
          "stop",
          "seed",
          "logprobs",
          "stream",
          "stream_options",
          "user",
          "n",
          "best_of",
          "echo",
          "suffix",
          "presence_penalty",
          "frequency_penalty",
          "logit_bias");

  /**
   * Fields of {@code POST /v1/chat/completions} this server reads. {@code user} has no effect;
   * {@code parallel_tool_calls} only matters with {@code tools}, which are refused, so any boolean
   * is accepted. Everything else of OpenAI's CreateChatCompletionRequest ({@code audio}, {@code
   * modalities}, {@code prediction}, {@code reasoning_effort}, {@code metadata}, {@code
   * service_tier}, ...) and every vendor extension ({@code top_k}, {@code min_p}, ...) is refused.
   */
  static final Set<String> CHAT_FIELDS =
      Set.of(
          "model",
          "messages",
          "max_tokens",
          "max_completion_tokens",
          "temperature",
          "top_p",
          "stop",
          "seed",
          "logprobs",
          "top_logprobs",
          "stream",
          "stream_options",
          "user",
          "n",
          "presence_penalty",
          "frequency_penalty",
          "logit_bias",
          "response_format",
          "tools",
          "tool_choice",
          "parallel_tool_calls",
          "functions",
          "function_call",
          "store");

  static final Set<String> CLASSIFY_FIELDS = Set.of("model", "input", "user");

  /** Fields of {@code POST /v1/feedback}. */
  static final Set<String> FEEDBACK_FIELDS = Set.of("id", "score", "correction");

  /** Longest corrected answer taken (it is counted, not stored). */
  static final int MAX_CORRECTION_CHARS = 65_536;

  /** Keys of a chat message this server renders; any other key with a value is refused. */
  static final Set<String> MESSAGE_FIELDS = Set.of("role", "content");

  private RequestParser() {}

  /**
   * A completion request: {@code prompt} text, or {@code promptIds} when the client sent token ids
   * (used as given: no BOS is added). Exactly one is non-null.
   */
  public record Completion(GenerationParams params, String prompt, long[] promptIds) {}

  public record Chat(GenerationParams params, List<Message> messages) {}

  public record Message(String role, String content) {}

  public record Classify(String model, List<String> inputs) {}

  public static Completion completion(JsonNode body) {
    requireObject(body);
    refuseUnknownFields(body, COMPLETION_FIELDS, "/v1/completions");
    JsonNode prompt = body.get("prompt");
    String text = null;
    long[] ids = null;
    if (prompt != null && prompt.isTextual()) {
      text = prompt.asText();
    } else if (prompt != null && prompt.isArray() && !prompt.isEmpty() && isTokenIds(prompt)) {
      ids = tokenIds(prompt, "prompt");
    } else if (prompt != null && prompt.isArray() && prompt.size() == 1) {
      JsonNode only = prompt.get(0);
      if (only.isTextual()) {
        text = only.asText();
      } else if (only.isArray() && !only.isEmpty() && isTokenIds(only)) {
        ids = tokenIds(only, "prompt[0]");
      }
    } else if (prompt != null && prompt.isArray() && prompt.size() > 1) {
      boolean batch = true;
      for (JsonNode item : prompt) {
        batch &= item.isTextual() || (item.isArray() && isTokenIds(item));
      }
      if (batch) {
        throw ApiException.badRequest(
            "prompt",
            "prompt: send one prompt per request (batches of "
                + prompt.size()
                + " prompts are not supported)");
      }
    }
    if (text == null && ids == null) {
      throw ApiException.badRequest(
          "prompt",
          (prompt == null || prompt.isNull() ? "prompt: required, " : "prompt: must be ")
              + "a string or a non-empty list of token ids (integers), or a list holding one of"
              + " these");
    }
    refuseUnsupported(body, "echo", false);
    refuseUnsupported(body, "suffix", null);
    refuseUnsupported(body, "best_of", 1);
    Integer logprobs = optionalInt(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS);
    return new Completion(
        common(body, optionalInt(body, "max_tokens", 1, Integer.MAX_VALUE), logprobs, true),
        text,
        ids);
  }

  private static boolean isTokenIds(JsonNode array) {
    for (JsonNode item : array) {
      if (!item.isIntegralNumber()) {
        return false;
      }
    }
    return true;
  }

  /** Token ids as given; whether each is in the model's vocabulary is checked by Inference. */
  private static long[] tokenIds(JsonNode array, String field) {
    long[] ids = new long[array.size()];
    for (int i = 0; i < ids.length; i++) {
      JsonNode id = array.get(i);
      if (!id.canConvertToInt() || id.asInt() < 0) {
        throw ApiException.badRequest(
            "prompt", field + "[" + i + "]: " + id + " is not a token id (0 or more)");
      }
      ids[i] = id.asInt();
    }
    return ids;
  }

  public static Chat chat(JsonNode body) {
    requireObject(body);
    refuseUnknownFields(body, CHAT_FIELDS, "/v1/chat/completions");
    JsonNode messages = body.get("messages");
    if (messages == null || !messages.isArray() || messages.isEmpty()) {
      throw ApiException.badRequest(
          "messages", "messages: required, a non-empty list of {role, content}");
    }
    List<Message> parsed = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      JsonNode m = messages.get(i);
      String field = "messages[" + i + "]";
      if (!m.isObject()) {
        throw ApiException.badRequest(field, field + ": must be an object {role, content}");
      }
      String role = m.path("role").asText("");
      if (role.equals("developer")) {
        // OpenAI's newer name for the system message; chat templates know only "system".
        role = "system";
      }
      if (!ChatTemplate.ROLES.contains(role)) {
        throw ApiException.badRequest(
            field + ".role",
            field
                + ".role: must be one of system, user, assistant (developer is read as system)"
                + (role.equals("tool") || role.equals("function")
                    ? "; tool and function messages are not supported (this server does not"
                        + " implement tool calls)"
                    : ""));
      }
      for (var entry : m.properties()) {
        if (!MESSAGE_FIELDS.contains(entry.getKey()) && !entry.getValue().isNull()) {
          throw ApiException.badRequest(
              field + "." + entry.getKey(),
              field
                  + "."
                  + entry.getKey()
                  + ": not supported by this server (a message is rendered from its role and"
                  + " content only); remove it from the request");
        }
      }
      JsonNode content = m.get("content");
      if (role.equals("assistant") && (content == null || content.isNull())) {
        // OpenAI allows an assistant message without content (it had only tool calls, which are
        // refused above): it is an empty turn.
        parsed.add(new Message(role, ""));
      } else {
        parsed.add(new Message(role, content(content, field + ".content")));
      }
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

  /**
   * @param maxInputs the most inputs one request may hold ({@code --max-classify-inputs}): one
   *     request runs on one worker, and a huge one would hold it while every other request waits
   */
  public static Classify classify(JsonNode body, int maxInputs) {
    requireObject(body);
    refuseUnknownFields(body, CLASSIFY_FIELDS, "/v1/classify");
    refuseUnless(body, "user", JsonNode::isTextual, "a string");
    String model = model(body);
    JsonNode input = body.get("input");
    List<String> inputs = new ArrayList<>();
    if (input != null && input.isTextual()) {
      inputs.add(input.asText());
    } else if (input != null && input.isArray() && !input.isEmpty()) {
      if (input.size() > maxInputs) {
        throw ApiException.badRequest(
            "input",
            "input: "
                + input.size()
                + " inputs, but this server takes at most "
                + maxInputs
                + " per request (--max-classify-inputs); split them over several requests");
      }
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

  /**
   * Feedback on one answer: its {@code id} and a {@code score} in [0, 1] (1 best), a {@code
   * correction} (the answer it should have been), or both.
   */
  public record Feedback(String id, Double score, String correction) {}

  public static Feedback feedback(JsonNode body) {
    requireObject(body);
    refuseUnknownFields(body, FEEDBACK_FIELDS, "/v1/feedback");
    JsonNode id = body.get("id");
    if (id == null || !id.isTextual() || id.asText().isBlank()) {
      throw ApiException.badRequest(
          "id", "id: required, the \"id\" of the completion, chat completion or classify response");
    }
    JsonNode score = body.get("score");
    Double value = null;
    if (score != null && !score.isNull()) {
      if (!score.isNumber() || !(score.asDouble() >= 0 && score.asDouble() <= 1)) {
        throw ApiException.badRequest(
            "score", "score: must be a number from 0 (wrong) to 1 (right), got " + score);
      }
      value = score.asDouble();
    }
    JsonNode correction = body.get("correction");
    String corrected = null;
    if (correction != null && !correction.isNull()) {
      if (!correction.isTextual() || correction.asText().isEmpty()) {
        throw ApiException.badRequest(
            "correction", "correction: must be a non-empty string, the answer it should have been");
      }
      if (correction.asText().length() > MAX_CORRECTION_CHARS) {
        throw ApiException.badRequest(
            "correction",
            "correction: "
                + correction.asText().length()
                + " characters, at most "
                + MAX_CORRECTION_CHARS);
      }
      corrected = correction.asText();
    }
    if (value == null && corrected == null) {
      throw ApiException.badRequest(
          "score", "give a score (a number from 0 to 1), a correction (a string), or both");
    }
    return new Feedback(id.asText(), value, corrected);
  }

  private static GenerationParams common(
      JsonNode body, Integer maxTokens, Integer logprobs, boolean completion) {
    String model = model(body);
    refuseUnsupported(body, "n", 1);
    refuseUnsupported(body, "presence_penalty", 0);
    refuseUnsupported(body, "frequency_penalty", 0);
    refuseUnless(body, "logit_bias", v -> v.isObject() && v.isEmpty(), "an empty object (no bias)");
    if (!completion) {
      refuseUnless(
          body,
          "response_format",
          v -> v.isObject() && v.size() == 1 && "text".equals(v.path("type").asText()),
          "{\"type\": \"text\"} (structured output is not implemented)");
      refuseUnless(
          body,
          "tools",
          v -> v.isArray() && v.isEmpty(),
          "an empty list (tool calls are not implemented)");
      refuseUnless(
          body,
          "functions",
          v -> v.isArray() && v.isEmpty(),
          "an empty list (function calls are not implemented)");
      for (String choice : List.of("tool_choice", "function_call")) {
        refuseUnless(
            body,
            choice,
            v -> v.isTextual() && (v.asText().equals("none") || v.asText().equals("auto")),
            "\"none\" or \"auto\" (with no tools the model always answers with text)");
      }
      refuseUnless(body, "parallel_tool_calls", JsonNode::isBoolean, "true or false");
      refuseUnless(
          body,
          "store",
          v -> v.isBoolean() && !v.asBoolean(),
          "false (completions are not stored)");
    }
    refuseUnless(body, "user", JsonNode::isTextual, "a string");
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
    boolean includeUsage = false;
    JsonNode streamOptions = body.get("stream_options");
    if (streamOptions != null && !streamOptions.isNull()) {
      if (!stream) {
        throw ApiException.badRequest(
            "stream_options", "stream_options: only allowed when stream is true");
      }
      if (!streamOptions.isObject()) {
        throw ApiException.badRequest(
            "stream_options", "stream_options: must be an object {\"include_usage\": bool}");
      }
      for (var entry : streamOptions.properties()) {
        if (!entry.getKey().equals("include_usage") && !entry.getValue().isNull()) {
          throw ApiException.badRequest(
              "stream_options." + entry.getKey(),
              "stream_options."
                  + entry.getKey()
                  + ": not supported by this server (only include_usage is); remove it");
        }
      }
      includeUsage = optionalBoolean(streamOptions, "include_usage", "stream_options.");
    }
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
    return optionalBoolean(body, field, "");
  }

  private static boolean optionalBoolean(JsonNode body, String field, String prefix) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return false;
    }
    if (!value.isBoolean()) {
      throw ApiException.badRequest(prefix + field, prefix + field + ": must be true or false");
    }
    return value.asBoolean();
  }

  /**
   * Refuses a field the endpoint does not know: silently ignoring it could change what the client
   * gets without telling it (a vendor's {@code top_k}, a misspelled {@code max_token}).
   */
  private static void refuseUnknownFields(JsonNode body, Set<String> known, String endpoint) {
    for (var entry : body.properties()) {
      if (!known.contains(entry.getKey()) && !entry.getValue().isNull()) {
        throw ApiException.badRequest(
            entry.getKey(),
            entry.getKey()
                + ": not a field this server implements for "
                + endpoint
                + "; remove it from the request (see docs/serving.md for the fields it reads)");
      }
    }
  }

  /** Refuses a field unless it holds a value that changes nothing ({@code accepted} says which). */
  private static void refuseUnless(
      JsonNode body, String field, Predicate<JsonNode> isAccepted, String accepted) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull() || isAccepted.test(value)) {
      return;
    }
    throw ApiException.badRequest(
        field,
        field
            + ": this server accepts only "
            + accepted
            + "; remove it from the request or send that value");
  }

  /** Refuses a field whose value differs from the only one this server implements. */
  private static void refuseUnsupported(JsonNode body, String field, Object supported) {
    JsonNode value = body.get(field);
    if (value == null || value.isNull()) {
      return;
    }
    boolean ok =
        supported instanceof Integer i
            ? value.isNumber() && value.asDouble() == i
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
