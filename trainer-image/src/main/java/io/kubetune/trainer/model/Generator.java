package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * Text generation over base + adapter with a KV cache: the prompt is processed once, then one token
 * per step. Greedy when temperature is 0, else temperature and nucleus (top-p) sampling.
 */
public final class Generator {
  private final LlamaModel model;

  public Generator(LlamaModel model) {
    this.model = model;
  }

  public record Settings(int maxNewTokens, double temperature, double topP, long seed) {
    public static Settings greedy(int maxNewTokens) {
      return new Settings(maxNewTokens, 0, 1, 0);
    }
  }

  /**
   * Receives each generated token with the raw (untempered) logits it was drawn from; returning
   * false stops generation (a stop sequence matched, or the client went away).
   */
  @FunctionalInterface
  public interface TokenListener {
    boolean onToken(long token, float[] logits);
  }

  /** Generated token ids (without the prompt), stopping after any of {@code stopIds}. */
  public long[] generate(long[] prompt, Settings settings, Set<Long> stopIds) {
    return generate(prompt, settings, stopIds, (token, logits) -> true);
  }

  /**
   * Generated token ids (without the prompt), stopping after any of {@code stopIds}, after {@code
   * maxNewTokens}, at the context limit, or when the listener says so.
   */
  public long[] generate(
      long[] prompt, Settings settings, Set<Long> stopIds, TokenListener listener) {
    Random random = new Random(settings.seed());
    List<Long> out = new ArrayList<>();
    try (NDManager scope = model.manager().newSubManager();
        KvCache cache = new KvCache(scope, model.config().numHiddenLayers())) {
      long[] input = prompt;
      for (int i = 0; i < settings.maxNewTokens(); i++) {
        if (cache.length() + input.length > model.config().maxPositionEmbeddings()) {
          break;
        }
        float[] logits;
        try (NDManager step = scope.newSubManager()) {
          NDArray hidden =
              model.hiddenStates(LlamaModel.ids(step, new long[][] {input}), cache, false);
          NDArray last = hidden.get("0, -1:");
          logits = model.logits(last).toFloatArray();
        }
        long next = pick(logits, settings, random);
        out.add(next);
        if (!listener.onToken(next, logits) || stopIds.contains(next)) {
          break;
        }
        input = new long[] {next};
      }
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }

  static long pick(float[] logits, Settings settings, Random random) {
    if (settings.temperature() <= 0) {
      int best = 0;
      for (int i = 1; i < logits.length; i++) {
        if (logits[i] > logits[best]) {
          best = i;
        }
      }
      return best;
    }
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double[] probs = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < logits.length; i++) {
      probs[i] = Math.exp((logits[i] - max) / settings.temperature());
      sum += probs[i];
    }
    Integer[] order = new Integer[logits.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
      probs[i] /= sum;
    }
    Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
    // Smallest set of most likely tokens whose mass reaches top-p, then sample within it.
    double kept = 0;
    int count = 0;
    while (count < order.length && (count == 0 || kept < settings.topP())) {
      kept += probs[order[count++]];
    }
    double r = random.nextDouble() * kept;
    for (int i = 0; i < count; i++) {
      r -= probs[order[i]];
      if (r <= 0) {
        return order[i];
      }
    }
    return order[count - 1];
  }

  /** log p(token_t | tokens_<t) for each token of {@code continuation} after {@code prompt}. */
  public float[] logProbabilities(long[] prompt, long[] continuation) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("the prompt needs at least one token (e.g. BOS)");
    }
    long[] all = new long[prompt.length + continuation.length];
    System.arraycopy(prompt, 0, all, 0, prompt.length);
    System.arraycopy(continuation, 0, all, prompt.length, continuation.length);
    float[] result = new float[continuation.length];
    try (NDManager step = model.manager().newSubManager()) {
      NDArray logProbs =
          model
              .logits(model.hiddenStates(LlamaModel.ids(step, new long[][] {all}), null, false))
              .logSoftmax(2);
      for (int i = 0; i < continuation.length; i++) {
        int position = prompt.length + i - 1;
        result[i] = logProbs.getFloat(0, position, continuation[i]);
      }
    }
    return result;
  }
}
