package io.kubetune.trainer.storage;

import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Runs one storage call under a {@link RetryPolicy}. */
final class Retrier {
  private static final Logger LOG = LoggerFactory.getLogger(Retrier.class);

  /** A storage call; may throw anything, the classifier decides what is retried. */
  @FunctionalInterface
  interface Call<T> {
    T run(int attempt) throws Exception;
  }

  /** Describes a failure for messages (status and error code, never headers or credentials). */
  interface Describer {
    String describe(Throwable error);
  }

  private final RetryPolicy policy;
  private final Predicate<Throwable> retryable;
  private final Predicate<Throwable> staleConnection;
  private final Describer describer;
  private final Clock clock;
  private final Refusal refusal;

  /**
   * Time as the retrier sees it: the budget is measured and the backoff waited on this clock, so
   * tests run the schedule without sleeping for real.
   */
  interface Clock {
    /** Monotonic time in nanoseconds (as {@link System#nanoTime()}). */
    long nanoTime();

    /**
     * Waits {@code millis}; false when interrupted (with the thread's interrupt flag set again).
     */
    boolean sleep(long millis);

    /** The JVM's monotonic clock and {@link Thread#sleep}. */
    Clock SYSTEM =
        new Clock() {
          @Override
          public long nanoTime() {
            return System.nanoTime();
          }

          @Override
          public boolean sleep(long millis) {
            try {
              Thread.sleep(millis);
              return true;
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              return false;
            }
          }
        };
  }

  /** Turns a failure that is the user's input (e.g. a bucket that does not exist) into one. */
  interface Refusal {
    /** The exception to throw instead of {@code error} (not retried), or null. */
    RuntimeException of(String what, Throwable error);
  }

  Retrier(
      RetryPolicy policy,
      Predicate<Throwable> retryable,
      Predicate<Throwable> staleConnection,
      Describer describer) {
    this(policy, retryable, staleConnection, describer, Clock.SYSTEM);
  }

  /**
   * @param staleConnection failures that mean a pooled keep-alive connection was already closed by
   *     the server; the first one per call is retried at once (the next attempt opens a new
   *     connection), later ones back off like any other
   */
  Retrier(
      RetryPolicy policy,
      Predicate<Throwable> retryable,
      Predicate<Throwable> staleConnection,
      Describer describer,
      Clock clock) {
    this(policy, retryable, staleConnection, describer, clock, (what, error) -> null);
  }

  /**
   * @param refusal failures that are bad input: thrown as it maps them, without retrying
   */
  Retrier(
      RetryPolicy policy,
      Predicate<Throwable> retryable,
      Predicate<Throwable> staleConnection,
      Describer describer,
      Clock clock,
      Refusal refusal) {
    this.refusal = refusal;
    this.policy = policy;
    this.retryable = retryable;
    this.staleConnection = staleConnection;
    this.describer = describer;
    this.clock = clock;
  }

  RetryPolicy policy() {
    return policy;
  }

  /**
   * Runs {@code call} until it succeeds, fails with a non-retryable error, or the attempts or the
   * time budget run out.
   *
   * @param what operation and URI for messages, e.g. {@code "PUT s3://b/k"}
   */
  <T> T run(String what, Call<T> call) throws StorageException {
    long start = clock.nanoTime();
    long deadline = start + policy.totalTimeout().toNanos();
    boolean staleRetried = false;
    for (int attempt = 1; ; attempt++) {
      try {
        return call.run(attempt);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new StorageException(what + " interrupted", e);
      } catch (InvalidKeyException | ObjectNotFoundException e) {
        throw e;
      } catch (Exception e) {
        RuntimeException refused = refusal.of(what, e);
        if (refused != null) {
          throw refused;
        }
        String reason = describer.describe(e);
        if (!retryable.test(e)) {
          if (e instanceof StorageException se) {
            throw se;
          }
          throw new StorageException(what + " failed: " + reason, e);
        }
        long elapsedMs = (clock.nanoTime() - start) / 1_000_000;
        if (attempt >= policy.maxAttempts()) {
          throw new StorageException(
              String.format(
                  "%s failed after %d attempts in %.1f s (retry limit %d attempts): %s",
                  what, attempt, elapsedMs / 1000.0, policy.maxAttempts(), reason),
              e);
        }
        if (!staleRetried && staleConnection.test(e)) {
          staleRetried = true;
          LOG.debug("{}: stale pooled connection ({}); retrying at once", what, reason);
          continue;
        }
        long ceiling = policy.backoffCeilingMillis(attempt);
        long backoff =
            ceiling <= 1
                ? ceiling
                : ceiling / 2 + ThreadLocalRandom.current().nextLong(ceiling / 2);
        if (clock.nanoTime() + backoff * 1_000_000 > deadline) {
          throw new StorageException(
              String.format(
                  "%s failed after %d attempts in %.1f s (retry budget %.1f s): %s",
                  what,
                  attempt,
                  elapsedMs / 1000.0,
                  policy.totalTimeout().toMillis() / 1000.0,
                  reason),
              e);
        }
        LOG.warn(
            "{} failed (attempt {}/{}): {}; retrying in {} ms",
            what,
            attempt,
            policy.maxAttempts(),
            reason,
            backoff);
        if (!clock.sleep(backoff)) {
          throw new StorageException(what + " interrupted while backing off", e);
        }
      }
    }
  }
}
