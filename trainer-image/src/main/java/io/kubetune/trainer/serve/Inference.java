package io.kubetune.trainer.serve;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.kubetune.trainer.data.ChatTemplate;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.model.Generator;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.serve.ModelRepository.ServedModel;
import io.kubetune.trainer.serve.ModelRepository.Task;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;

/**
 * Generation and classification for the server. Prompts are built exactly as the trainer builds its
 * training examples (BOS, the chat template with each part tokenized separately, the classification
 * end token), so an adapter sees at serving time what it learned on. Runs on the server's worker
 * threads; every model here is safe to use from several threads at once because adapters are views
 * over shared, read-only base weights.
 */
public final class Inference {
  private final TextTokenizer tokenizer;
  private final long endOfTurnId;
  private final ChatTemplate chatTemplate;

  /** BOS/EOS exactly as the trainer's dataset adds them, so served inputs match training. */
  private final JsonlDataset.SpecialTokens special;

  public Inference(TextTokenizer tokenizer) {
    this.tokenizer = tokenizer;
    this.special = JsonlDataset.SpecialTokens.of(tokenizer.settings());
    this.endOfTurnId = tokenizer.tokenId(ChatTemplate.END);
    this.chatTemplate = ChatTemplate.of(tokenizer.settings());
  }

  /** One generated token as OpenAI reports it: its text, log-probability and top alternatives. */
  public record TokenLogprob(String token, double logprob, Map<String, Double> top) {}

  /** Receives text as soon as it is safe to send (streaming). */
  public interface Sink {
    void delta(String text, List<TokenLogprob> logprobs);
  }

  public record Result(
      String text,
      String finishReason,
      int promptTokens,
      int completionTokens,
      List<TokenLogprob> logprobs) {}

  public record Classification(String label, Map<String, Double> probabilities, int tokens) {}

  public long[] completionPrompt(LlamaModel model, String prompt) {
    return completionPrompt(prompt);
  }

  /** BOS (if the model adds one) and the prompt's tokens, as the trainer's completion data. */
  public long[] completionPrompt(String prompt) {
    return concat(List.of(bos(), tokenizer.encode(prompt)));
  }

  /**
   * A prompt the client sent as token ids: used exactly as given (no BOS added, as vLLM does), once
   * every id is known to be in the model's vocabulary.
   *
   * @throws ApiException 400 naming {@code prompt} for an id outside the vocabulary
   */
  public long[] completionPrompt(LlamaModel model, long[] promptIds) {
    int vocabulary = model.config().vocabSize();
    for (int i = 0; i < promptIds.length; i++) {
      if (promptIds[i] >= vocabulary) {
        throw ApiException.badRequest(
            "prompt",
            "prompt: token id "
                + promptIds[i]
                + " (position "
                + i
                + ") is not in the model's vocabulary of "
                + vocabulary
                + " ids (0 to "
                + (vocabulary - 1)
                + ")");
      }
    }
    return promptIds.clone();
  }

  /**
   * The chat prompt: the model's own chat template with the generation prompt, tokenized as one
   * text (as the trainer renders chat data), or KubeTune's template when the model has none.
   *
   * @throws ApiException 400 when the model's template refuses the conversation
   */
  public long[] chatPrompt(LlamaModel model, List<RequestParser.Message> messages) {
    List<ChatTemplate.Message> chat = new ArrayList<>();
    for (RequestParser.Message m : messages) {
      chat.add(new ChatTemplate.Message(m.role(), m.content()));
    }
    try {
      return chatPrompt(chat);
    } catch (io.kubetune.trainer.BadInputException e) {
      throw ApiException.badRequest("messages", "messages: " + e.getMessage());
    }
  }

  /**
   * The chat prompt of a conversation as the trainer renders chat data, ending with the assistant's
   * generation prompt (also for evaluation on held-out conversations).
   *
   * @throws io.kubetune.trainer.BadInputException when the model's template refuses it
   */
  public long[] chatPrompt(List<ChatTemplate.Message> messages) {
    if (chatTemplate != null) {
      return tokenizer.encode(chatTemplate.render(messages, true));
    }
    List<long[]> parts = new ArrayList<>();
    parts.add(bos());
    for (ChatTemplate.Message m : messages) {
      parts.add(tokenizer.encode(ChatTemplate.header(m.role())));
      parts.add(tokenizer.encode(m.content()));
      parts.add(tokenizer.encode(ChatTemplate.footer()));
    }
    parts.add(tokenizer.encode(ChatTemplate.header("assistant")));
    return concat(parts);
  }

  /**
   * Generates a completion; {@code sink} (may be null) receives the text as it becomes final.
   *
   * @throws ApiException 400 when the prompt or max_tokens do not fit the context
   */
  public Result generate(
      ServedModel served,
      long[] prompt,
      GenerationParams params,
      Sink sink,
      BooleanSupplier cancelled) {
    if (served.task() != Task.GENERATION) {
      throw ApiException.badRequest(
          "model",
          "model '"
              + served.id()
              + "' is a classification adapter; send its requests to POST /v1/classify");
    }
    return generate(served.model(), prompt, params, sink, cancelled);
  }

  /**
   * Generates a completion with {@code model} (base, or base + the adapter it carries); {@code
   * sink} (may be null) receives the text as it becomes final.
   *
   * @throws ApiException 400 when the prompt or max_tokens do not fit the context
   */
  public Result generate(
      LlamaModel model,
      long[] prompt,
      GenerationParams params,
      Sink sink,
      BooleanSupplier cancelled) {
    int context = model.config().maxPositionEmbeddings();
    if (prompt.length >= context) {
      throw ApiException.badRequest(
          "prompt",
          "the prompt is "
              + prompt.length
              + " tokens but the model's context is "
              + context
              + " tokens; shorten the prompt");
    }
    int room = context - prompt.length;
    int maxTokens = params.maxTokens() == null ? room : params.maxTokens();
    if (maxTokens > room) {
      throw ApiException.badRequest(
          "max_tokens",
          "max_tokens "
              + maxTokens
              + " plus the prompt's "
              + prompt.length
              + " tokens exceed the model's context of "
              + context
              + " tokens; set max_tokens to at most "
              + room);
    }
    // Every EOS id of the model (tokenizer, generation_config.json, config.json) ends the answer:
    // Llama 3 instruct ends a turn with another id than its eos_token_id's first.
    Set<Long> stopIds = new HashSet<>(tokenizer.settings().stopIds());
    model.config().eosTokenIds().forEach(id -> stopIds.add((long) id));
    if (endOfTurnId >= 0) {
      stopIds.add(endOfTurnId);
    }
    StopSequences stops = new StopSequences(params.stop());
    List<Long> kept = new ArrayList<>();
    List<TokenLogprob> logprobs = new ArrayList<>();
    int[] sentChars = {0};
    int[] sentLogprobs = {0};
    String[] finish = {"length"};
    String[] text = {""};
    long[] generated =
        new Generator(model)
            .generate(
                prompt,
                new Generator.Settings(
                    maxTokens, params.temperature(), params.topP(), params.seed()),
                stopIds,
                (token, logits) -> {
                  if (stopIds.contains(token)) {
                    finish[0] = "stop";
                    return false;
                  }
                  kept.add(token);
                  if (params.logprobs() != null) {
                    logprobs.add(logprob(token, logits, params.logprobs()));
                  }
                  String full = tokenizer.decode(toArray(kept));
                  int cut = stops.stopIndex(full);
                  if (cut >= 0) {
                    text[0] = full.substring(0, cut);
                    finish[0] = "stop";
                    return false;
                  }
                  text[0] = full;
                  int safe = stops.safeLength(full);
                  if (sink != null && safe > sentChars[0]) {
                    sink.delta(
                        full.substring(sentChars[0], safe),
                        logprobs.subList(sentLogprobs[0], logprobs.size()));
                    sentChars[0] = safe;
                    sentLogprobs[0] = logprobs.size();
                  }
                  return !cancelled.getAsBoolean();
                });
    if (sink != null && (text[0].length() > sentChars[0] || logprobs.size() > sentLogprobs[0])) {
      sink.delta(
          text[0].substring(Math.min(sentChars[0], text[0].length())),
          logprobs.subList(sentLogprobs[0], logprobs.size()));
    }
    return new Result(text[0], finish[0], prompt.length, generated.length, logprobs);
  }

  /** Class probabilities for in-process callers (evaluation, tests): no token limit. */
  public List<Classification> classify(ServedModel served, List<String> inputs) {
    return classify(served, inputs, Integer.MAX_VALUE);
  }

  /**
   * Class probabilities from the adapter's head on the last token, as the trainer evaluates.
   *
   * @param maxTokens the most tokens all inputs together may have ({@code --max-classify-tokens}),
   *     checked before any forward pass
   */
  public List<Classification> classify(ServedModel served, List<String> inputs, int maxTokens) {
    if (served.task() != Task.CLASSIFICATION) {
      throw ApiException.badRequest(
          "model",
          "model '"
              + served.id()
              + "' is not a classification adapter; classify needs one trained with dataset"
              + " format classification (see GET /v1/models)");
    }
    LlamaModel model = served.model();
    int context = model.config().maxPositionEmbeddings();
    List<long[]> encoded = new ArrayList<>();
    long total = 0;
    for (int i = 0; i < inputs.size(); i++) {
      long[] ids =
          concat(List.of(bos(), tokenizer.encode(inputs.get(i)), new long[] {special.eos()}));
      if (ids.length > context) {
        throw ApiException.badRequest(
            "input",
            "input["
                + i
                + "] is "
                + ids.length
                + " tokens but the model's context is "
                + context
                + " tokens; shorten it");
      }
      encoded.add(ids);
      total += ids.length;
    }
    if (total > maxTokens) {
      throw ApiException.badRequest(
          "input",
          "input: the "
              + inputs.size()
              + " inputs are "
              + total
              + " tokens together, but this server takes at most "
              + maxTokens
              + " tokens per request (--max-classify-tokens); split them over several requests");
    }
    List<Classification> results = new ArrayList<>();
    for (long[] ids : encoded) {
      float[] probs;
      try (NDManager step = model.manager().newSubManager()) {
        NDArray hidden = model.hiddenStates(LlamaModel.ids(step, new long[][] {ids}), null, false);
        NDArray last = hidden.get("0, -1");
        probs = served.classifierHead().matMul(last).softmax(0).toFloatArray();
      }
      Map<String, Double> byLabel = new LinkedHashMap<>();
      int best = 0;
      for (int c = 0; c < probs.length; c++) {
        byLabel.put(served.labels().get(c), (double) probs[c]);
        if (probs[c] > probs[best]) {
          best = c;
        }
      }
      results.add(new Classification(served.labels().get(best), byLabel, ids.length));
    }
    return results;
  }

  private TokenLogprob logprob(long token, float[] logits, int top) {
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double sum = 0;
    for (float l : logits) {
      sum += Math.exp(l - max);
    }
    double logZ = max + Math.log(sum);
    Map<String, Double> alternatives = new LinkedHashMap<>();
    if (top > 0) {
      Integer[] order = new Integer[logits.length];
      for (int i = 0; i < order.length; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
      for (int i = 0; i < Math.min(top, order.length); i++) {
        alternatives.merge(
            tokenizer.decode(new long[] {order[i]}), logits[order[i]] - logZ, Math::max);
      }
    }
    return new TokenLogprob(
        tokenizer.decode(new long[] {token}), logits[(int) token] - logZ, alternatives);
  }

  /** The BOS the trainer puts before every example, or nothing for models without one (Qwen). */
  private long[] bos() {
    return special.bos() == JsonlDataset.SpecialTokens.NONE
        ? new long[0]
        : new long[] {special.bos()};
  }

  private static long[] concat(List<long[]> parts) {
    int n = 0;
    for (long[] p : parts) {
      n += p.length;
    }
    long[] all = new long[n];
    int at = 0;
    for (long[] p : parts) {
      System.arraycopy(p, 0, all, at, p.length);
      at += p.length;
    }
    return all;
  }

  private static long[] toArray(List<Long> ids) {
    long[] a = new long[ids.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = ids.get(i);
    }
    return a;
  }
}
