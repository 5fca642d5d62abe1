package io.kubetune.trainer.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/** Retry classification and backoff bounds, on a fake clock (no test sleeps for real). */
class RetrierTest {
  final List<Long> sleeps = new ArrayList<>();

  /** Starts at an arbitrary time; a sleep is recorded and moves the time on by its length. */
  final Retrier.Clock clock =
      new Retrier.Clock() {
        long now = 1_000_000_000_000L;

        @Override
        public long nanoTime() {
          return now;
        }

        @Override
        public boolean sleep(long millis) {
          sleeps.add(millis);
          now += millis * 1_000_000;
          return true;
        }
      };

  Retrier retrier(RetryPolicy policy) {
    return new Retrier(
        policy,
        S3ObjectStore::isRetryable,
        S3ObjectStore::isStaleConnection,
        S3ObjectStore::describe,
        clock);
  }

  static S3Exception s3(int status, String code) {
    return (S3Exception)
        S3Exception.builder()
            .statusCode(status)
            .awsErrorDetails(
                AwsErrorDetails.builder().errorCode(code).errorMessage("msg " + code).build())
            .build();
  }

  @Test
  void classifiesTransientFailures() {
    assertThat(S3ObjectStore.isRetryable(s3(503, "SlowDown"))).isTrue();
    assertThat(S3ObjectStore.isRetryable(s3(500, "InternalError"))).isTrue();
    assertThat(S3ObjectStore.isRetryable(s3(429, "TooManyRequests"))).isTrue();
    assertThat(S3ObjectStore.isRetryable(s3(400, "RequestTimeout"))).isTrue();
    assertThat(S3ObjectStore.isRetryable(s3(400, "ThrottlingException"))).isTrue();
    assertThat(S3ObjectStore.isRetryable(s3(409, "ConditionalRequestConflict"))).isTrue();
    assertThat(
            S3ObjectStore.isRetryable(
                SdkClientException.create(
                    "Unable to execute HTTP request", new ConnectException())))
        .isTrue();
    assertThat(
            S3ObjectStore.isRetryable(
                SdkClientException.create("read", new SocketTimeoutException("Read timed out"))))
        .isTrue();
    assertThat(S3ObjectStore.isRetryable(ApiCallAttemptTimeoutException.create(1000))).isTrue();

    assertThat(S3ObjectStore.isRetryable(s3(403, "AccessDenied"))).isFalse();
    assertThat(S3ObjectStore.isRetryable(s3(403, "SignatureDoesNotMatch"))).isFalse();
    assertThat(S3ObjectStore.isRetryable(s3(404, "NoSuchBucket"))).isFalse();
    assertThat(S3ObjectStore.isRetryable(s3(400, "InvalidArgument"))).isFalse();
    assertThat(S3ObjectStore.isRetryable(SdkClientException.create("Unable to load credentials")))
        .isFalse();
  }

  @Test
  void retriesSlowDownWithGrowingJitteredBackoffThenSucceeds() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    RetryPolicy policy =
        new RetryPolicy(10, Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofMinutes(1));
    String result =
        retrier(policy)
            .run(
                "PUT s3://b/k",
                attempt -> {
                  if (calls.incrementAndGet() < 6) {
                    throw s3(503, "SlowDown");
                  }
                  return "ok";
                });
    assertThat(result).isEqualTo("ok");
    assertThat(sleeps).hasSize(5);
    long[] ceilings = {100, 200, 400, 800, 1000};
    for (int i = 0; i < 5; i++) {
      assertThat(sleeps.get(i)).isBetween(ceilings[i] / 2, ceilings[i]);
    }
  }

  @Test
  void stopsAtMaxAttemptsWithAClearMessage() {
    RetryPolicy policy =
        new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(10), Duration.ofMinutes(1));
    assertThatThrownBy(
            () ->
                retrier(policy)
                    .run(
                        "PUT s3://b/k",
                        attempt -> {
                          throw s3(500, "InternalError");
                        }))
        .isInstanceOf(StorageException.class)
        .hasMessageStartingWith("PUT s3://b/k failed after 3 attempts")
        .hasMessageContaining("retry limit 3 attempts")
        .hasMessageContaining("HTTP 500 InternalError: msg InternalError");
    assertThat(sleeps).hasSize(2);
  }

  @Test
  void stopsWhenTheNextWaitWouldExceedTheBudget() {
    // Waits of 200-400 ms against a 500 ms budget leave room for one or two retries.
    RetryPolicy policy =
        new RetryPolicy(
            100, Duration.ofMillis(400), Duration.ofMillis(400), Duration.ofMillis(500));
    AtomicInteger calls = new AtomicInteger();
    assertThatThrownBy(
            () ->
                retrier(policy)
                    .run(
                        "GET s3://b/k",
                        attempt -> {
                          calls.incrementAndGet();
                          throw s3(503, "SlowDown");
                        }))
        .hasMessageStartingWith("GET s3://b/k failed after")
        .hasMessageContaining("retry budget 0.5 s")
        .hasMessageContaining("HTTP 503 SlowDown");
    assertThat(calls.get()).isBetween(2, 3);
    // Every wait that was taken fit the budget; the one that would not was never started.
    assertThat(sleeps)
        .hasSize(calls.get() - 1)
        .allSatisfy(ms -> assertThat(ms).isBetween(200L, 400L));
    assertThat(sleeps.stream().mapToLong(Long::longValue).sum()).isLessThanOrEqualTo(500);
  }

  @Test
  void anInterruptedBackoffEndsTheCall() {
    Retrier interrupted =
        new Retrier(
            RetryPolicy.DEFAULT,
            S3ObjectStore::isRetryable,
            S3ObjectStore::isStaleConnection,
            S3ObjectStore::describe,
            new Retrier.Clock() {
              @Override
              public long nanoTime() {
                return 0;
              }

              @Override
              public boolean sleep(long millis) {
                return false;
              }
            });
    AtomicInteger calls = new AtomicInteger();
    assertThatThrownBy(
            () ->
                interrupted.run(
                    "PUT s3://b/k",
                    attempt -> {
                      calls.incrementAndGet();
                      throw s3(503, "SlowDown");
                    }))
        .isInstanceOf(StorageException.class)
        .hasMessage("PUT s3://b/k interrupted while backing off");
    assertThat(calls).hasValue(1);
  }

  @Test
  void doesNotRetryPermanentErrors() {
    AtomicInteger calls = new AtomicInteger();
    assertThatThrownBy(
            () ->
                retrier(RetryPolicy.DEFAULT)
                    .run(
                        "PUT s3://b/k",
                        attempt -> {
                          calls.incrementAndGet();
                          throw s3(403, "AccessDenied");
                        }))
        .isInstanceOf(StorageException.class)
        .hasMessage("PUT s3://b/k failed: HTTP 403 AccessDenied: msg AccessDenied");
    assertThat(calls).hasValue(1);
    assertThat(sleeps).isEmpty();
  }

  @Test
  void staleConnectionIsRetriedOnceWithoutWaiting() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    retrier(RetryPolicy.DEFAULT)
        .run(
            "PUT s3://b/k",
            attempt -> {
              if (calls.incrementAndGet() == 1) {
                throw SdkClientException.create(
                    "Unable to execute HTTP request",
                    new IOException("Error writing request body to server"));
              }
              return null;
            });
    assertThat(calls).hasValue(2);
    assertThat(sleeps).isEmpty();
  }

  @Test
  void backoffCeilingDoesNotOverflow() {
    RetryPolicy policy =
        new RetryPolicy(100, Duration.ofMillis(500), Duration.ofSeconds(30), Duration.ofHours(1));
    assertThat(policy.backoffCeilingMillis(1)).isEqualTo(500);
    assertThat(policy.backoffCeilingMillis(3)).isEqualTo(2000);
    assertThat(policy.backoffCeilingMillis(60)).isEqualTo(30_000);
  }
}
