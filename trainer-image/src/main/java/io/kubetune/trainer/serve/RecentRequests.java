package io.kubetune.trainer.serve;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The ids of the last {@code capacity} answered requests and the variant that answered each, so
 * that {@code POST /v1/feedback} can credit the right adapter. Memory is bounded: the oldest id is
 * forgotten when a new one comes in, and feedback on it is then a 404 that says so. Each request
 * takes feedback once. Thread-safe.
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
   * Records feedback on request {@code id} with the variant that answered it: 404 when the id is
   * not among the last {@code capacity} answered here, 409 when it already had feedback.
   */
  public Variants.Stats feedback(String id, Double score, boolean correction) {
    Variants.Stats variant;
    synchronized (this) {
      Entry entry = entries.get(id);
      if (entry == null) {
        throw new ApiException(
            404,
            "invalid_request_error",
            "id",
            "request_not_found",
            "id: no request '"
                + id
                + "' among the last "
                + capacity
                + " answered by this server (--feedback-memory); send feedback with the"
                + " \"id\" of a completion, chat completion or classify response soon after"
                + " it, to the pod that answered it (response header KubeTune-Pod)");
      }
      if (entry.rated) {
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

  public int capacity() {
    return capacity;
  }

  synchronized int size() {
    return entries.size();
  }
}
