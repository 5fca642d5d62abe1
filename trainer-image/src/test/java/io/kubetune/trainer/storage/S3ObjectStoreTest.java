package io.kubetune.trainer.storage;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.http.SdkHttpResponse;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.UploadPartRequest;

/**
 * The contract against a real S3Proxy, plus what only S3 has: multipart abort, retries across an
 * outage, no request for a rejected key, no secret in logs or errors. Credentials come through the
 * default AWS chain (system properties here, environment variables in pods).
 */
class S3ObjectStoreTest extends ObjectStoreContractTest {
  static final String BUCKET = "kubetune-test";
  static S3ProxyServer server;

  @BeforeAll
  static void startServer() throws Exception {
    S3ProxyServer.useTestCredentials();
    server = S3ProxyServer.start(BUCKET);
  }

  @AfterAll
  static void stopServer() throws Exception {
    server.close();
    S3ProxyServer.clearTestCredentials();
  }

  static StorageSettings settings(URI endpoint) {
    return StorageSettings.defaults()
        .withEndpoint(endpoint)
        .withRegion("us-east-1")
        .withPathStyle(true)
        .withPartSize(PART_SIZE)
        .withListPageSize(3);
  }

  @Override
  ObjectStore open(String name) {
    return ObjectStores.forUri("s3://" + BUCKET + "/" + name + "/", settings(server.endpoint()));
  }

  @Test
  void largeFileUsesMultipartUpload() throws Exception {
    AtomicInteger parts = new AtomicInteger();
    try (S3ObjectStore s3 = withInterceptor("mp", counting(UploadPartRequest.class, parts))) {
      Path source = randomFile("mp.bin", 12L * 1024 * 1024, 3);
      s3.put("big.bin", source);
      assertThat(parts).hasValue(3);
      Path target = tmp.resolve("mp.copy");
      s3.get("big.bin", target);
      assertThat(sha256(target)).isEqualTo(sha256(source));
    }
  }

  @Test
  void failedMultipartUploadIsAbortedAndLeavesNoObject() throws Exception {
    ExecutionInterceptor failPartTwo =
        new ExecutionInterceptor() {
          @Override
          public void beforeExecution(
              Context.BeforeExecution context, ExecutionAttributes attributes) {
            if (context.request() instanceof UploadPartRequest r && r.partNumber() == 2) {
              throw new IllegalStateException("injected failure of part 2");
            }
          }
        };
    try (S3ObjectStore s3 = withInterceptor("abort", failPartTwo)) {
      Path source = randomFile("abort.bin", 11L * 1024 * 1024, 4);
      assertThatThrownBy(() -> s3.put("x.bin", source))
          .isInstanceOf(StorageException.class)
          .hasMessageContaining("injected failure of part 2");
      assertThat(s3.exists("x.bin")).isFalse();
      assertThat(s3.client().listMultipartUploads(b -> b.bucket(BUCKET).prefix("abort/")).uploads())
          .isEmpty();
    }
  }

  @Test
  void putIfAbsentWhoseResponseWasLostStillReportsItsOwnWrite() throws Exception {
    AtomicInteger transmitted = new AtomicInteger();
    ExecutionInterceptor loseFirstResponse =
        new ExecutionInterceptor() {
          @Override
          public void afterTransmission(
              Context.AfterTransmission context, ExecutionAttributes attributes) {
            if (context.request() instanceof PutObjectRequest r
                && r.ifNoneMatch() != null
                && transmitted.incrementAndGet() == 1) {
              throw new UncheckedIOException(new SocketTimeoutException("injected: response lost"));
            }
          }
        };
    try (S3ObjectStore s3 = withInterceptor("lost", loseFirstResponse)) {
      // The first attempt lands, its response is "lost"; the retry gets 412 on our own bytes.
      assertThat(s3.putIfAbsent("step-1/manifest.json", "mine".getBytes(UTF_8))).isTrue();
      assertThat(s3.putIfAbsent("step-1/manifest.json", "stale".getBytes(UTF_8))).isFalse();
      assertThat(s3.getBytes("step-1/manifest.json")).asString(UTF_8).isEqualTo("mine");
    }
  }

  /** Turns the server's next {@code count} answers to PutObject into 503 SlowDown. */
  static ExecutionInterceptor slowDown(AtomicInteger count) {
    return new ExecutionInterceptor() {
      final ThreadLocal<Boolean> replaced = ThreadLocal.withInitial(() -> false);

      @Override
      public SdkHttpResponse modifyHttpResponse(
          Context.ModifyHttpResponse context, ExecutionAttributes attributes) {
        boolean replace =
            context.request() instanceof PutObjectRequest && count.getAndDecrement() > 0;
        replaced.set(replace);
        return replace
            ? context.httpResponse().toBuilder()
                .statusCode(503)
                .statusText("Slow Down")
                .putHeader("Content-Type", "application/xml")
                .build()
            : context.httpResponse();
      }

      @Override
      public Optional<InputStream> modifyHttpResponseContent(
          Context.ModifyHttpResponse context, ExecutionAttributes attributes) {
        if (!replaced.get()) {
          return context.responseBody();
        }
        return Optional.of(
            new ByteArrayInputStream(
                ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                        + "<Message>Please reduce your request rate.</Message></Error>")
                    .getBytes(UTF_8)));
      }
    };
  }

  @Test
  void slowDownAnswersAreRetriedWithBackoff() throws Exception {
    // Real answers of the server rewritten before the SDK parses them: the real error path
    // (status, XML error body, classification, backoff) runs.
    AtomicInteger slowDowns = new AtomicInteger(2);
    try (S3ObjectStore s3 = withInterceptor("slowdown", slowDown(slowDowns))) {
      long start = System.nanoTime();
      s3.put("metrics.json", "{}".getBytes(UTF_8));
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertThat(slowDowns.get()).isNegative(); // both used, then a real answer
      assertThat(s3.getBytes("metrics.json")).asString(UTF_8).isEqualTo("{}");
      // Two waits: 100-200 ms, then 200-400 ms (default initial backoff 200 ms).
      assertThat(tookMs).isGreaterThanOrEqualTo(300);
    }
  }

  @Test
  void persistentSlowDownFailsWithTheServersReason() {
    AtomicInteger slowDowns = new AtomicInteger(100);
    try (S3ObjectStore s3 =
        S3ObjectStore.create(
            StorageUri.parse("s3://" + BUCKET + "/slowdown2/"),
            settings(server.endpoint())
                .withRetry(
                    new RetryPolicy(
                        5, Duration.ofMillis(20), Duration.ofMillis(40), Duration.ofSeconds(5))),
            software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider.builder().build(),
            List.of(slowDown(slowDowns)))) {
      PrintStream err = System.err;
      ByteArrayOutputStream captured = new ByteArrayOutputStream();
      System.setErr(new PrintStream(captured, true, UTF_8));
      try {
        assertThatThrownBy(() -> s3.put("x", new byte[] {1}))
            .isInstanceOf(StorageException.class)
            .hasMessageContaining("PUT s3://" + BUCKET + "/slowdown2/x failed after 5 attempts");
      } finally {
        System.setErr(err);
      }
      // The last attempt may also have met S3Proxy's dropped keep-alive connection (see docs), so
      // the server's reason is checked in the retry log lines.
      assertThat(captured.toString(UTF_8))
          .contains("HTTP 503 SlowDown: Please reduce your request rate.");
    }
  }

  @Test
  void rejectedKeyMakesNoRequest() throws Exception {
    AtomicInteger requests = new AtomicInteger();
    try (S3ObjectStore s3 = withInterceptor("nokey", counting(Object.class, requests))) {
      for (String key : List.of("../other-job/manifest.json", "%2e%2e/x", "/abs", "a\\b")) {
        assertThatThrownBy(() -> s3.put(key, new byte[] {1}))
            .isInstanceOf(InvalidKeyException.class)
            .hasMessageContaining(key)
            .hasMessageContaining("s3://" + BUCKET + "/nokey/");
        assertThatThrownBy(() -> s3.putIfAbsent(key, new byte[] {1}))
            .isInstanceOf(InvalidKeyException.class);
        assertThatThrownBy(() -> s3.delete(List.of("fine", key)))
            .isInstanceOf(InvalidKeyException.class);
      }
      assertThat(requests).hasValue(0);
      s3.put("fine", new byte[] {1});
      assertThat(requests.get()).isPositive(); // the counter does see requests (retries included)
    }
  }

  @Test
  void backsOffWhileTheServerIsDownAndSucceedsWhenItReturns() throws Exception {
    try (S3ProxyServer flaky = S3ProxyServer.start("flaky");
        ObjectStore s3 =
            ObjectStores.forUri(
                "s3://flaky/run/",
                settings(flaky.endpoint())
                    .withRetry(
                        new RetryPolicy(
                            20,
                            Duration.ofMillis(100),
                            Duration.ofMillis(800),
                            Duration.ofSeconds(15))))) {
      s3.put("before", "1".getBytes(UTF_8));
      flaky.stop();
      CompletableFuture<Void> comesBack =
          CompletableFuture.runAsync(
              () -> {
                try {
                  Thread.sleep(1500);
                  flaky.restart();
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      long start = System.nanoTime();
      s3.put("after", "2".getBytes(UTF_8));
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      comesBack.get(10, TimeUnit.SECONDS);
      assertThat(tookMs).isBetween(1000L, 10_000L);
      assertThat(s3.getBytes("before")).asString(UTF_8).isEqualTo("1");
      assertThat(s3.getBytes("after")).asString(UTF_8).isEqualTo("2");
    }
  }

  @Test
  void givesUpWithAClearErrorWhenTheOutageOutlastsTheBudget() throws Exception {
    int closedPort;
    try (ServerSocket socket = new ServerSocket(0)) {
      closedPort = socket.getLocalPort();
    }
    RetryPolicy budget =
        new RetryPolicy(50, Duration.ofMillis(100), Duration.ofMillis(400), Duration.ofSeconds(2));
    try (ObjectStore s3 =
        ObjectStores.forUri(
            "s3://down/run/",
            settings(URI.create("http://127.0.0.1:" + closedPort)).withRetry(budget))) {
      long start = System.nanoTime();
      assertThatThrownBy(() -> s3.put("step-1/manifest.json", new byte[] {1}))
          .isInstanceOf(StorageException.class)
          .hasMessageContaining("PUT s3://down/run/step-1/manifest.json failed after")
          .hasMessageContaining("retry budget 2.0 s")
          .hasMessageContaining("Connection refused");
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertThat(tookMs).isBetween(500L, 4000L);
    }
  }

  @Test
  void noSecretInLogsOrErrors() throws Exception {
    PrintStream err = System.err;
    PrintStream out = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream tee = new PrintStream(captured, true, UTF_8);
    StringBuilder errors = new StringBuilder();
    String wrongSecret = "kubetune-WRONG-secret-also-never-logged";
    System.setErr(tee);
    System.setOut(tee);
    try {
      // Success, a retried outage that gives up, and an authentication failure.
      try (ObjectStore s3 = open("secrets")) {
        s3.put("ok", new byte[] {1});
        errors.append(s3).append('\n');
      }
      int closedPort;
      try (ServerSocket socket = new ServerSocket(0)) {
        closedPort = socket.getLocalPort();
      }
      try (ObjectStore down =
          ObjectStores.forUri(
              "s3://" + BUCKET + "/secrets/",
              settings(URI.create("http://127.0.0.1:" + closedPort))
                  .withRetry(
                      new RetryPolicy(
                          3,
                          Duration.ofMillis(10),
                          Duration.ofMillis(20),
                          Duration.ofSeconds(5))))) {
        down.put("x", new byte[] {1});
      } catch (Exception e) {
        errors.append(stackTrace(e));
      }
      try (ObjectStore wrong =
          S3ObjectStore.create(
              StorageUri.parse("s3://" + BUCKET + "/secrets/"),
              settings(server.endpoint())
                  .withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(5))
                  .withRetry(RetryPolicy.NONE),
              StaticCredentialsProvider.create(
                  AwsBasicCredentials.create(S3ProxyServer.ACCESS_KEY, wrongSecret)))) {
        wrong.getBytes("ok");
      } catch (Exception e) {
        errors.append(stackTrace(e));
      }
    } finally {
      System.setErr(err);
      System.setOut(out);
    }
    try {
      ObjectStores.forUri(
          "s3://" + BUCKET + "/x/",
          StorageSettings.defaults()
              .withEndpoint(URI.create("http://user:" + wrongSecret + "@127.0.0.1:1")));
    } catch (IllegalArgumentException e) {
      errors.append(stackTrace(e));
    }
    String logs = captured.toString(UTF_8);
    assertThat(logs).contains("retrying in"); // the outage was logged...
    assertThat(errors.toString()).contains("SignatureDoesNotMatch").contains("failed after 3");
    for (String secret : List.of(S3ProxyServer.SECRET_KEY, wrongSecret)) {
      assertThat(logs).doesNotContain(secret); // ...without any secret
      assertThat(errors.toString()).doesNotContain(secret);
    }
  }

  private static String stackTrace(Throwable e) {
    java.io.StringWriter w = new java.io.StringWriter();
    e.printStackTrace(new java.io.PrintWriter(w));
    return w.toString();
  }

  private S3ObjectStore withInterceptor(String prefix, ExecutionInterceptor interceptor) {
    return S3ObjectStore.create(
        StorageUri.parse("s3://" + BUCKET + "/" + prefix + "/"),
        settings(server.endpoint()),
        software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider.builder().build(),
        List.of(interceptor));
  }

  private static ExecutionInterceptor counting(Class<?> type, AtomicInteger counter) {
    return new ExecutionInterceptor() {
      @Override
      public void beforeTransmission(
          Context.BeforeTransmission context, ExecutionAttributes attributes) {
        if (type.isInstance(context.request())) {
          counter.incrementAndGet();
        }
      }
    };
  }
}
