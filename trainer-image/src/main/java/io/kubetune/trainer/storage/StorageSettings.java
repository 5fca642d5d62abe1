package io.kubetune.trainer.storage;

import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.trainer.TrainerEnvironment;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;

/**
 * How to reach object storage. Mirrors {@link TrainerConfig.StorageSettings} (endpoint, region,
 * path-style) plus tuning knobs with defaults. Holds no credentials: those come from the standard
 * AWS chain ({@code AWS_ACCESS_KEY_ID}, {@code AWS_SECRET_ACCESS_KEY}, {@code AWS_SESSION_TOKEN},
 * profiles, web identity, instance metadata).
 *
 * @param endpoint S3 endpoint override (e.g. {@code http://minio:9000}); null for AWS
 * @param region signing region; null means the SDK's chain ({@code AWS_REGION}, profile), else
 *     {@code us-east-1}
 * @param pathStyle path-style addressing ({@code http://host/bucket/key}), needed by most
 *     S3-compatible servers
 * @param partSize multipart part size in bytes (at least 5 MiB); files larger than this are
 *     uploaded in parts
 * @param uploadConcurrency parts uploaded in parallel per file
 * @param listPageSize keys per list request (S3 allows at most 1000)
 * @param connectTimeout TCP connect timeout per attempt
 * @param socketTimeout read timeout per attempt
 * @param retry retry policy for every call (single requests and each part)
 */
public record StorageSettings(
    URI endpoint,
    String region,
    boolean pathStyle,
    long partSize,
    int uploadConcurrency,
    int listPageSize,
    Duration connectTimeout,
    Duration socketTimeout,
    RetryPolicy retry) {

  public static final long MIN_PART_SIZE = 5L * 1024 * 1024;
  public static final long DEFAULT_PART_SIZE = 16L * 1024 * 1024;
  public static final String DEFAULT_REGION = io.kubetune.api.Bounds.STORAGE_REGION_DEFAULT;

  /** Environment variable the operator sets on serving pods for path-style addressing. */
  public static final String ENV_PATH_STYLE = TrainerEnvironment.S3_PATH_STYLE;

  public StorageSettings {
    if (partSize < MIN_PART_SIZE) {
      throw new IllegalArgumentException(
          "partSize must be at least 5 MiB (S3's minimum part size), was " + partSize);
    }
    if (uploadConcurrency < 1) {
      throw new IllegalArgumentException("uploadConcurrency must be >= 1");
    }
    if (listPageSize < 1 || listPageSize > 1000) {
      throw new IllegalArgumentException("listPageSize must be in 1..1000");
    }
    if (retry == null) {
      retry = RetryPolicy.DEFAULT;
    }
  }

  public static StorageSettings defaults() {
    return new StorageSettings(
        null,
        null,
        false,
        DEFAULT_PART_SIZE,
        4,
        1000,
        Duration.ofSeconds(10),
        Duration.ofSeconds(60),
        RetryPolicy.DEFAULT);
  }

  /** From the trainer config document the operator writes (null means defaults). */
  public static StorageSettings from(TrainerConfig.StorageSettings config) {
    StorageSettings s = defaults();
    if (config == null) {
      return s;
    }
    return s.withEndpoint(config.endpoint == null ? null : URI.create(config.endpoint))
        .withRegion(config.region)
        .withPathStyle(Boolean.TRUE.equals(config.pathStyle));
  }

  /**
   * From the environment the operator gives serving pods: {@code AWS_ENDPOINT_URL_S3} (or {@code
   * AWS_ENDPOINT_URL}), {@code AWS_REGION}, {@code KUBETUNE_S3_PATH_STYLE}.
   */
  public static StorageSettings fromEnvironment(Map<String, String> env) {
    String endpoint = env.getOrDefault("AWS_ENDPOINT_URL_S3", env.get("AWS_ENDPOINT_URL"));
    return defaults()
        .withEndpoint(endpoint == null || endpoint.isBlank() ? null : URI.create(endpoint))
        .withRegion(env.get("AWS_REGION"))
        .withPathStyle(
            "true".equals(env.getOrDefault(ENV_PATH_STYLE, "").trim().toLowerCase(Locale.ROOT)));
  }

  public StorageSettings withEndpoint(URI endpoint) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withRegion(String region) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withPathStyle(boolean pathStyle) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withPartSize(long partSize) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withUploadConcurrency(int uploadConcurrency) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withListPageSize(int listPageSize) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withTimeouts(Duration connectTimeout, Duration socketTimeout) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }

  public StorageSettings withRetry(RetryPolicy retry) {
    return new StorageSettings(
        endpoint,
        region,
        pathStyle,
        partSize,
        uploadConcurrency,
        listPageSize,
        connectTimeout,
        socketTimeout,
        retry);
  }
}
