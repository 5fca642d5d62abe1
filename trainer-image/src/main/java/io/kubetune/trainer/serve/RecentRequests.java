package io.kubetune.trainer.serve;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The ids of the last {@code capacity} answered (or rated) requests and the variant that answered
 * each, so that {@code POST /v1/feedback} can credit the right adapter and take feedback once per
 * answer. Memory is bounded: the oldest id is forgotten when a new one comes in. An id this pod
 * does not remember is credited by the adapter digest it names (see {@link #feedback}).
 * Thread-safe.
 */
public final class RecentRequests {
  /** Default of {@code --feedback-memory}. */
  public static final int DEFAULT_CAPACITY = 10_000;

  private static final class Entry {
    final Variants.Stats variant;
    boolean rated;

    Entry(Variants.Stats variant) {
      this.variant = variant;
    }
  }

  private final int capacity;
  private final Map<String, Entry> entries;

  public RecentRequests(int capacity) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity must be at least 1");
    }
    this.capacity = capacity;
    this.entries =
        new LinkedHashMap<>(16, 0.75f, false) {
          @Override
          protected boolean removeEldestEntry(Map.Entry<String, Entry> eldest) {
            return size() > RecentRequests.this.capacity;
          }
        };
  }

  /** Remembers an answered request. */
  public synchronized void answered(String id, Variants.Stats variant) {
    entries.put(id, new Entry(variant));
  }

  /**
   * Records feedback on request {@code id} and returns the variant credited with it.
   *
   * <p>An id this pod answered is credited to the variant that answered it (409 when it already had
   * feedback here). Any other id this server issues names the adapter that answered ({@link
   * ResponseIds}): another serving pod behind the same Service answered it, and it is credited to
   * the variant of {@code served} (this pod's) with that adapter digest, then remembered here as
   * rated, so a second feedback sent to this pod is a 409 as well. A 404 when the id is not one
   * this server issues, or names an adapter this pod does not serve.
   *
   * @param served this pod's variants ({@code Variants.all()})
   */
  public Variants.Stats feedback(
      String id, Double score, boolean correction, List<Variants.Stats> served) {
    Variants.Stats variant;
    synchronized (this) {
      Entry entry = entries.get(id);
      if (entry == null) {
        entry = new Entry(answeredElsewhere(id, served));
        entries.put(id, entry);
      } else if (entry.rated) {
        throw new ApiException(
            409,
            "invalid_request_error",
            "id",
            "feedback_exists",
            "id: request '" + id + "' already has feedback; each answer takes feedback once");
      }
      entry.rated = true;
      variant = entry.variant;
    }
    variant.feedback(score, correction);
    return variant;
  }

  /** The variant of this pod that serves the adapter an id names (answered by another pod). */
  private Variants.Stats answeredElsewhere(String id, List<Variants.Stats> served) {
    String key =
        ResponseIds.adapterKeyOf(id)
            .orElseThrow(
                () ->
                    notFound(
                        "id: no request '"
                            + id
                            + "' among the last "
                            + capacity
                            + " answered by this server (--feedback-memory), and not the id of"
                            + " an answer of another serving pod; send feedback with the \"id\""
                            + " of a completion, chat completion or classify response"));
    List<Variants.Stats> matches =
        served.stream().filter(s -> key.equals(ResponseIds.adapterKey(s.digest()))).toList();
    if (matches.size() == 1) {
      return matches.get(0);
    }
    if (matches.isEmpty()) {
      throw notFound(
          "id: request '"
              + id
              + "' was answered by adapter "
              + key
              + "…, which this pod does not serve (it serves "
              + served.stream()
                  .map(s -> s.model() + " " + s.variant().label() + " " + keyOf(s))
                  .toList()
              + "); feedback on answers of an adapter that is no longer served is not counted");
    }
    throw notFound(
        "id: request '"
            + id
            + "' was answered by adapter "
            + key
            + "…, which this pod serves under several names "
            + matches.stream().map(s -> s.model() + " " + s.variant().label()).toList()
            + "; send the feedback to the pod that answered (response header KubeTune-Pod)");
  }

  private static String keyOf(Variants.Stats s) {
    return ResponseIds.adapterKey(s.digest());
  }

  private static ApiException notFound(String message) {
    return new ApiException(404, "invalid_request_error", "id", "request_not_found", message);
  }

  public int capacity() {
    return capacity;
  }

  synchronized int size() {
    return entries.size();
  }
}
