package io.kubetune.trainer.storage;

import java.time.Duration;

/**
 * Exponential backoff with jitter, bounded by attempts and by total time. Attempt {@code n} (from
 * 1) that fails with a retryable error waits a random time in {@code [d/2, d]} where {@code d =
 * min(maxBackoff, initialBackoff * 2^(n-1))}, unless that wait would end after {@code totalTimeout}
 * from the first attempt, in which case the operation fails at once.
 *
 * @param maxAttempts attempts including the first, at least 1
 * @param initialBackoff backoff before the second attempt (upper bound, before jitter)
 * @param maxBackoff cap on a single backoff
 * @param totalTimeout budget for all attempts and waits of one operation
 */
public record RetryPolicy(
    int maxAttempts, Duration initialBackoff, Duration maxBackoff, Duration totalTimeout) {

  /** Rides out a storage outage of about a minute: 10 attempts, 0.2 s doubling to 15 s. */
  public static final RetryPolicy DEFAULT =
      new RetryPolicy(10, Duration.ofMillis(200), Duration.ofSeconds(15), Duration.ofSeconds(90));

  public static final RetryPolicy NONE =
      new RetryPolicy(1, Duration.ZERO, Duration.ZERO, Duration.ofDays(1));

  public RetryPolicy {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be >= 1, was " + maxAttempts);
    }
    if (initialBackoff.isNegative() || maxBackoff.isNegative() || totalTimeout.isNegative()) {
      throw new IllegalArgumentException("retry durations must not be negative");
    }
  }

  /** Upper bound of the backoff after failed attempt {@code attempt} (1-based), before jitter. */
  long backoffCeilingMillis(int attempt) {
    long initial = initialBackoff.toMillis();
    int shift = Math.min(attempt - 1, 30);
    long ceiling = initial << shift;
    if (ceiling < 0 || (shift > 0 && ceiling >> shift != initial)) {
      ceiling = Long.MAX_VALUE;
    }
    return Math.min(ceiling, maxBackoff.toMillis());
  }
}
