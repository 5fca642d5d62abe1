package io.kubetune.trainer.serve;

import io.kubetune.api.Bounds;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.serve.ModelRepository.ServedModel;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Which adapter answers a request, and what each one did. Every served model is the stable variant
 * of itself; during a canary an adapter also has a canary variant (loaded as {@code <name>:canary})
 * that answers {@code weight} percent of the requests for {@code <name>}.
 *
 * <p>The split is a deterministic interleave, not a coin: request number n (counted per model from
 * 0) goes to the canary when {@code floor((n+1)·w/100) > floor(n·w/100)}, so of the first N
 * requests exactly {@code floor(N·w/100)} go to the canary, spread evenly (with w = 10, every tenth
 * request). Each variant is also addressable on its own: {@code <name>:stable} and {@code
 * <name>:canary} (the latter is a 404 naming the fix when no canary is served).
 *
 * <p>Per variant it counts requests that reached a worker, server errors (5xx: the variant's
 * fault), client errors (4xx) and their total latency, and the feedback scores and corrections
 * given for its answers. These are the facts {@code GET /v1/variants} reports and the source of the
 * per-variant series on {@code /metrics}; the pod decides nothing.
 */
public final class Variants {
  /** Separates a model name from an explicit variant: {@code support:canary}. */
  public static final char SEPARATOR = ':';

  /** Scores the recent mean is taken over. */
  public static final int RECENT_FEEDBACK = 100;

  public enum Variant {
    STABLE,
    CANARY;

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** The id a canary adapter of {@code name} is loaded and listed under. */
  public static String canaryId(String name) {
    return name + SEPARATOR + Variant.CANARY.label();
  }

  /**
   * Where one request goes.
   *
   * @param model the model name the client meant, without a variant suffix
   */
  public record Route(ServedModel served, String model, Variant variant, Stats stats) {}

  /** What one variant of one model did since the server became ready. Thread-safe. */
  public static final class Stats {
    private final String model;
    private final Variant variant;
    private final String digest;
    private final int weight;
    private final Instant since;
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong clientErrors = new AtomicLong();
    private final AtomicLong latencyNanos = new AtomicLong();
    private long scores;
    private double scoreSum;
    private long corrections;
    private final ArrayDeque<Double> recent = new ArrayDeque<>();
    private double recentSum;

    Stats(String model, Variant variant, String digest, int weight, Instant since) {
      this.model = model;
      this.variant = variant;
      this.digest = digest;
      this.weight = weight;
      this.since = since;
    }

    /** A request this variant computed ended with HTTP {@code status}. */
    public void answered(int status, long nanos) {
      requests.incrementAndGet();
      latencyNanos.addAndGet(nanos);
      if (status >= 500) {
        errors.incrementAndGet();
      } else if (status >= 400) {
        clientErrors.incrementAndGet();
      }
    }

    /** Feedback on one of this variant's answers: a score in [0, 1] and/or a correction. */
    public synchronized void feedback(Double score, boolean correction) {
      if (score != null) {
        scores++;
        scoreSum += score;
        recent.addLast(score);
        recentSum += score;
        if (recent.size() > RECENT_FEEDBACK) {
          recentSum -= recent.removeFirst();
        }
      }
      if (correction) {
        corrections++;
      }
    }

    public String model() {
      return model;
    }

    public Variant variant() {
      return variant;
    }

    /** SHA-256 of the adapter's weights; null for the base model. */
    public String digest() {
      return digest;
    }

    /** Percent of the model's requests this variant answers when none names a variant. */
    public int weight() {
      return weight;
    }

    public Instant since() {
      return since;
    }

    public long requests() {
      return requests.get();
    }

    public long errors() {
      return errors.get();
    }

    public long clientErrors() {
      return clientErrors.get();
    }

    public double latencySeconds() {
      return latencyNanos.get() / 1e9;
    }

    /** Server errors over requests; 0 before the first request. */
    public double errorRate() {
      long n = requests();
      return n == 0 ? 0 : (double) errors() / n;
    }

    public synchronized long scores() {
      return scores;
    }

    public synchronized double scoreSum() {
      return scoreSum;
    }

    /** Mean of every score so far; NaN before the first. */
    public synchronized double scoreMean() {
      return scores == 0 ? Double.NaN : scoreSum / scores;
    }

    /** Mean of the last {@link #RECENT_FEEDBACK} scores; NaN before the first. */
    public synchronized double recentScoreMean() {
      return recent.isEmpty() ? Double.NaN : recentSum / recent.size();
    }

    public synchronized long corrections() {
      return corrections;
    }
  }

  private record Canary(ServedModel served, int weight, AtomicLong counter) {
    boolean takes() {
      long n = counter.getAndIncrement();
      return (n + 1) * weight / 100 > n * weight / 100;
    }
  }

  private final ModelRepository repository;
  private final Map<String, Canary> canaries;
  private final Map<String, Stats> stats = new LinkedHashMap<>();

  /**
   * @param canaryWeights the weight of each canary, by the name of the model it is a canary of; the
   *     repository must hold both {@code name} and {@link #canaryId(name)}
   */
  public Variants(ModelRepository repository, Map<String, Integer> canaryWeights, Instant since) {
    this.repository = repository;
    Map<String, Canary> byName = new LinkedHashMap<>();
    canaryWeights.forEach(
        (name, weight) -> {
          Bounds.CANARY_WEIGHT
              .problem(weight)
              .ifPresent(p -> fail("--canary-weight " + p + " (percent of requests)"));
          ServedModel stable = find(name);
          ServedModel canary = find(canaryId(name));
          if (stable == null || canary == null) {
            fail("--canary " + name + ": no --adapter is named " + name + "; name the adapter");
          }
          if (stable.task() != canary.task()) {
            fail(
                "--canary "
                    + name
                    + " is a "
                    + canary.task().name().toLowerCase(Locale.ROOT)
                    + " model but the adapter it would replace is a "
                    + stable.task().name().toLowerCase(Locale.ROOT)
                    + " model; a canary must answer the same requests");
          }
          byName.put(name, new Canary(canary, weight, new AtomicLong()));
        });
    this.canaries = Map.copyOf(byName);
    for (ServedModel m : repository.all()) {
      if (isCanaryId(m.id())) {
        continue;
      }
      Canary canary = canaries.get(m.id());
      int stableWeight = canary == null ? 100 : 100 - canary.weight();
      stats.put(m.id(), new Stats(m.id(), Variant.STABLE, m.digest(), stableWeight, since));
      if (canary != null) {
        stats.put(
            canaryId(m.id()),
            new Stats(m.id(), Variant.CANARY, canary.served().digest(), canary.weight(), since));
      }
    }
  }

  /** The model and variant for a request's {@code model} field; 404 for an unknown one. */
  public Route route(String requested) {
    return resolve(requested, true);
  }

  /**
   * The model an id names without counting a request: an explicit variant, else the stable one
   * ({@code GET /v1/models/{id}}).
   */
  public ServedModel model(String id) {
    return resolve(id, false).served();
  }

  private Route resolve(String requested, boolean split) {
    String name = requested;
    Variant explicit = null;
    int sep = requested.lastIndexOf(SEPARATOR);
    // A served id is itself first (a base model may be named "x:stable" with --model-name).
    boolean servedAsIs = find(requested) != null && !isCanaryId(requested);
    if (sep > 0 && !servedAsIs) {
      String suffix = requested.substring(sep + 1);
      for (Variant v : Variant.values()) {
        if (v.label().equals(suffix)) {
          explicit = v;
          name = requested.substring(0, sep);
        }
      }
    }
    ServedModel stable = find(name);
    if (stable == null || isCanaryId(name)) {
      throw ApiException.unknownModel(requested, ids());
    }
    Canary canary = canaries.get(name);
    if (explicit == Variant.CANARY && canary == null) {
      throw new ApiException(
          404,
          "invalid_request_error",
          "model",
          "model_not_found",
          "model '"
              + name
              + "' has no canary being served now; ask for '"
              + name
              + "' or '"
              + name
              + SEPARATOR
              + Variant.STABLE.label()
              + "'");
    }
    boolean toCanary =
        explicit == Variant.CANARY
            || (split && explicit == null && canary != null && canary.takes());
    return toCanary
        ? new Route(canary.served(), name, Variant.CANARY, stats.get(canaryId(name)))
        : new Route(stable, name, Variant.STABLE, stats.get(name));
  }

  /** Every variant's facts: each model's stable variant, then its canary. */
  public List<Stats> all() {
    return List.copyOf(stats.values());
  }

  /** The ids a client can ask for: each served model, its {@code :stable} and any canary. */
  public List<String> ids() {
    List<String> ids = new ArrayList<>();
    for (Stats s : stats.values()) {
      if (s.variant() == Variant.CANARY) {
        ids.add(canaryId(s.model()));
      } else {
        ids.add(s.model());
        if (canaries.containsKey(s.model())) {
          ids.add(s.model() + SEPARATOR + Variant.STABLE.label());
        }
      }
    }
    return ids;
  }

  private ServedModel find(String id) {
    return repository.all().stream().filter(m -> m.id().equals(id)).findFirst().orElse(null);
  }

  private static boolean isCanaryId(String id) {
    return id.endsWith(SEPARATOR + Variant.CANARY.label());
  }

  private static void fail(String message) {
    throw new BadInputException(message);
  }
}
