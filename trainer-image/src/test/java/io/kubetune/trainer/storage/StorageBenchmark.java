package io.kubetune.trainer.storage;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.CompletedPart;

/**
 * Upload throughput of {@link S3ObjectStore} next to raw AWS SDK calls, same S3Proxy, same run,
 * same client configuration. Not a test: run with
 *
 * <pre>
 * java -Xmx3g -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) \
 *   io.kubetune.trainer.storage.StorageBenchmark [sizeMiB] [rounds] [out.json]
 * </pre>
 *
 * Modes: raw single PUT (SDK putObject from a file), raw multipart (SDK calls, parts one after
 * another), store PUT of a file below the part size (single PUT through the store), store upload of
 * a file above it (parallel multipart), and store GET. The median of the rounds is reported;
 * "requests" counts HTTP attempts, so retries (S3Proxy drops some keep-alive PUTs) are visible.
 */
public final class StorageBenchmark {
  private static final String BUCKET = "bench";
  private static final int SMALL_COUNT = 32;

  public static void main(String[] args) throws Exception {
    int sizeMiB = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
    Path out = Path.of(args.length > 2 ? args[2] : "target/storage-benchmark.json");
    long size = sizeMiB * 1024L * 1024L;
    long partSize = StorageSettings.DEFAULT_PART_SIZE;

    Path dir = Files.createTempDirectory("storage-bench");
    Path file = dir.resolve("payload.bin");
    writeRandom(file, size);
    byte[] small = new byte[256 * 1024];
    new Random(7).nextBytes(small);

    Map<String, List<Double>> mbps = new LinkedHashMap<>();
    Map<String, AtomicInteger> requests = new LinkedHashMap<>();
    try (S3ProxyServer server = S3ProxyServer.start(BUCKET)) {
      StaticCredentialsProvider credentials =
          StaticCredentialsProvider.create(
              AwsBasicCredentials.create(S3ProxyServer.ACCESS_KEY, S3ProxyServer.SECRET_KEY));
      StorageSettings settings =
          StorageSettings.defaults()
              .withEndpoint(server.endpoint())
              .withRegion("us-east-1")
              .withPathStyle(true);
      StorageSettings singlePut = settings.withPartSize(size + 1);
      StorageUri root = StorageUri.parse("s3://" + BUCKET + "/bench/");
      String[] modes = {
        "raw_put",
        "raw_multipart",
        "store_put_single",
        "store_put_multipart",
        "store_get",
        "raw_small_files",
        "store_small_files"
      };
      for (String mode : modes) {
        mbps.put(mode, new ArrayList<>());
        requests.put(mode, new AtomicInteger());
      }
      // The raw client: this store's client configuration with the SDK's standard retries.
      try (S3Client raw =
              S3ObjectStore.clientBuilder(settings, credentials, List.of())
                  .overrideConfiguration(
                      o -> {
                        o.retryStrategy(AwsRetryStrategy.standardRetryStrategy());
                        o.addExecutionInterceptor(counter(requests, "raw"));
                      })
                  .build();
          S3ObjectStore store =
              S3ObjectStore.create(
                  root, settings, credentials, List.of(counter(requests, "store_multi")));
          S3ObjectStore single =
              S3ObjectStore.create(
                  root, singlePut, credentials, List.of(counter(requests, "store_single")))) {
        for (int round = 0; round <= rounds; round++) {
          boolean warmup = round == 0;
          String current;
          long t;

          current = "raw_put";
          t = System.nanoTime();
          raw.putObject(b -> b.bucket(BUCKET).key("bench/raw-put"), RequestBody.fromFile(file));
          record(mbps, current, size, t, warmup);

          current = "raw_multipart";
          t = System.nanoTime();
          rawMultipart(raw, "bench/raw-mp", file, size, partSize);
          record(mbps, current, size, t, warmup);

          current = "store_put_single";
          t = System.nanoTime();
          single.put("store-single", file);
          record(mbps, current, size, t, warmup);

          current = "store_put_multipart";
          t = System.nanoTime();
          store.put("store-mp", file);
          record(mbps, current, size, t, warmup);

          current = "store_get";
          Path target = dir.resolve("back.bin");
          t = System.nanoTime();
          store.get("store-mp", target);
          record(mbps, current, size, t, warmup);
          if (Files.size(target) != size) {
            throw new IllegalStateException("GET returned " + Files.size(target) + " bytes");
          }
          Files.delete(target);
          store.delete(List.of("raw-put", "raw-mp", "store-single", "store-mp"));

          // A checkpoint's small files (trainer state, metrics, manifest): 32 x 256 KiB.
          current = "raw_small_files";
          t = System.nanoTime();
          for (int i = 0; i < SMALL_COUNT; i++) {
            String key = "bench/raw-small-" + i;
            // S3Proxy drops some keep-alive connections between small PUTs; the SDK does not
            // retry the UncheckedIOException that HttpURLConnection then throws (see docs).
            for (int attempt = 1; ; attempt++) {
              try {
                raw.putObject(b -> b.bucket(BUCKET).key(key), RequestBody.fromBytes(small));
                break;
              } catch (RuntimeException e) {
                if (attempt == 5) {
                  throw e;
                }
              }
            }
          }
          record(mbps, current, (long) SMALL_COUNT * small.length, t, warmup);

          current = "store_small_files";
          t = System.nanoTime();
          for (int i = 0; i < SMALL_COUNT; i++) {
            store.put("store-small-" + i, small);
          }
          record(mbps, current, (long) SMALL_COUNT * small.length, t, warmup);
          store.delete(store.list("", true).stream().map(ObjectInfo::key).toList());
        }
      }
    } finally {
      Files.deleteIfExists(file);
      Files.deleteIfExists(dir);
    }

    Map<String, Object> report = new LinkedHashMap<>();
    report.put("objectMiB", sizeMiB);
    report.put("partMiB", partSize / (1024 * 1024));
    report.put("uploadConcurrency", StorageSettings.defaults().uploadConcurrency());
    report.put("rounds", rounds);
    report.put("cpus", Runtime.getRuntime().availableProcessors());
    Map<String, Object> results = new LinkedHashMap<>();
    for (Map.Entry<String, List<Double>> e : mbps.entrySet()) {
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("medianMBps", round1(median(e.getValue())));
      r.put("samplesMBps", e.getValue().stream().map(StorageBenchmark::round1).toList());
      results.put(e.getKey(), r);
    }
    report.put("results", results);
    double rawPut = median(mbps.get("raw_put"));
    report.put("storeMultipartVsRawPut", round3(median(mbps.get("store_put_multipart")) / rawPut));
    report.put("storeSingleVsRawPut", round3(median(mbps.get("store_put_single")) / rawPut));
    report.put("rawMultipartVsRawPut", round3(median(mbps.get("raw_multipart")) / rawPut));
    Map<String, Integer> counts = new LinkedHashMap<>();
    requests.forEach(
        (k, v) -> {
          if (v.get() > 0) {
            counts.put(k, v.get());
          }
        });
    report.put("httpAttempts", counts);

    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    String text = json.writeValueAsString(report);
    System.out.println(text);
    if (out.getParent() != null) {
      Files.createDirectories(out.getParent());
    }
    Files.writeString(out, text + "\n");
  }

  private static void rawMultipart(S3Client s3, String key, Path file, long size, long partSize)
      throws Exception {
    String uploadId = s3.createMultipartUpload(b -> b.bucket(BUCKET).key(key)).uploadId();
    List<CompletedPart> parts = new ArrayList<>();
    int number = 1;
    for (long offset = 0; offset < size; offset += partSize, number++) {
      long length = Math.min(partSize, size - offset);
      long from = offset;
      int n = number;
      String etag =
          s3.uploadPart(
                  b ->
                      b.bucket(BUCKET)
                          .key(key)
                          .uploadId(uploadId)
                          .partNumber(n)
                          .contentLength(length),
                  RequestBody.fromContentProvider(
                      () -> {
                        try {
                          return new RangeInputStream(file, from, length);
                        } catch (java.io.IOException e) {
                          throw new java.io.UncheckedIOException(e);
                        }
                      },
                      length,
                      "application/octet-stream"))
              .eTag();
      parts.add(CompletedPart.builder().partNumber(n).eTag(etag).build());
    }
    s3.completeMultipartUpload(
        b -> b.bucket(BUCKET).key(key).uploadId(uploadId).multipartUpload(m -> m.parts(parts)));
  }

  private static ExecutionInterceptor counter(Map<String, AtomicInteger> counts, String name) {
    AtomicInteger c = counts.computeIfAbsent(name, k -> new AtomicInteger());
    return new ExecutionInterceptor() {
      @Override
      public void beforeTransmission(
          Context.BeforeTransmission context, ExecutionAttributes attributes) {
        c.incrementAndGet();
      }
    };
  }

  private static void record(
      Map<String, List<Double>> mbps, String mode, long bytes, long startNanos, boolean warmup) {
    double seconds = (System.nanoTime() - startNanos) / 1e9;
    if (!warmup) {
      mbps.get(mode).add(bytes / 1e6 / seconds);
    }
  }

  private static void writeRandom(Path file, long size) throws Exception {
    Random random = new Random(42);
    byte[] chunk = new byte[1 << 20];
    try (OutputStream out = Files.newOutputStream(file)) {
      for (long left = size; left > 0; left -= chunk.length) {
        random.nextBytes(chunk);
        out.write(chunk, 0, (int) Math.min(chunk.length, left));
      }
    }
  }

  private static double median(List<Double> values) {
    double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return v.length == 0 ? Double.NaN : v[v.length / 2];
  }

  private static double round1(double v) {
    return Math.round(v * 10) / 10.0;
  }

  private static double round3(double v) {
    return Math.round(v * 1000) / 1000.0;
  }

  private StorageBenchmark() {}
}
