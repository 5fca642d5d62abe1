package io.kubetune.trainer.storage;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.core.sync.ResponseTransformer;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.CommonPrefix;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.Delete;
import software.amazon.awssdk.services.s3.model.DeleteObjectsResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.ObjectIdentifier;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Error;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * {@link ObjectStore} over S3 or an S3-compatible server (AWS SDK v2 with the JDK URLConnection
 * client). The SDK's own retries are off: every call, and every part of a multipart upload, runs
 * under this store's {@link RetryPolicy} so the total time is bounded and each retry is logged
 * (operation, URI, status, error code — never a header or credential).
 */
public final class S3ObjectStore implements ObjectStore {
  private static final Logger LOG = LoggerFactory.getLogger(S3ObjectStore.class);
  private static final String OCTETS = "application/octet-stream";
  private static final int MAX_PARTS = 10_000;
  private static final int MAX_DELETE_BATCH = 1000;

  /** Error codes worth retrying whatever the status (S3 documents these as transient). */
  private static final Set<String> RETRYABLE_CODES =
      Set.of(
          "SlowDown",
          "Throttling",
          "ThrottlingException",
          "RequestThrottled",
          "RequestTimeout",
          "RequestTimeoutException",
          "InternalError",
          "ServiceUnavailable",
          "OperationAborted",
          "ConditionalRequestConflict");

  private final StorageUri root;
  private final StorageSettings settings;
  private final S3Client s3;
  private final Retrier retrier;

  private final AutoCloseable ownedCredentials;

  private S3ObjectStore(
      StorageUri root, StorageSettings settings, S3Client s3, AutoCloseable ownedCredentials) {
    this.root = root;
    this.settings = settings;
    this.s3 = s3;
    this.ownedCredentials = ownedCredentials;
    this.retrier = retrier(settings.retry());
  }

  /** A store with credentials from the default AWS chain (environment variables first). */
  public static S3ObjectStore create(StorageUri root, StorageSettings settings) {
    if (!root.isS3()) {
      throw new IllegalArgumentException(root + " is not an s3:// URI");
    }
    DefaultCredentialsProvider chain = DefaultCredentialsProvider.builder().build();
    return new S3ObjectStore(
        root, settings, clientBuilder(settings, chain, List.of()).build(), chain);
  }

  public static S3ObjectStore create(
      StorageUri root, StorageSettings settings, AwsCredentialsProvider credentials) {
    return create(root, settings, credentials, List.of());
  }

  /** For tests: {@code interceptors} see (or fail) every request. */
  static S3ObjectStore create(
      StorageUri root,
      StorageSettings settings,
      AwsCredentialsProvider credentials,
      List<ExecutionInterceptor> interceptors) {
    if (!root.isS3()) {
      throw new IllegalArgumentException(root + " is not an s3:// URI");
    }
    return new S3ObjectStore(
        root, settings, clientBuilder(settings, credentials, interceptors).build(), null);
  }

  /** The client configuration this store uses, for benchmarks that compare raw SDK calls. */
  static S3ClientBuilder clientBuilder(
      StorageSettings settings,
      AwsCredentialsProvider credentials,
      List<ExecutionInterceptor> interceptors) {
    S3ClientBuilder builder =
        S3Client.builder()
            .httpClientBuilder(
                UrlConnectionHttpClient.builder()
                    .connectionTimeout(settings.connectTimeout())
                    .socketTimeout(settings.socketTimeout()))
            .credentialsProvider(credentials)
            .region(Region.of(region(settings)))
            .forcePathStyle(settings.pathStyle())
            .overrideConfiguration(
                o -> {
                  o.retryStrategy(AwsRetryStrategy.doNotRetry());
                  interceptors.forEach(o::addExecutionInterceptor);
                });
    if (settings.endpoint() != null) {
      URI endpoint = settings.endpoint();
      if (endpoint.getRawUserInfo() != null) {
        // Do not echo the URI: the user info may be a password.
        throw new IllegalArgumentException(
            "The storage endpoint must not contain user info (user:password@); credentials come"
                + " from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
      }
      builder.endpointOverride(endpoint);
      // S3-compatible servers differ in their support of the SDK's default CRC trailers; send
      // checksums only where the API requires them (DeleteObjects). Manifests carry SHA-256.
      builder.requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED);
      builder.responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
    }
    return builder;
  }

  private static String region(StorageSettings settings) {
    if (settings.region() != null && !settings.region().isBlank()) {
      return settings.region();
    }
    String env = System.getenv("AWS_REGION");
    if (env == null || env.isBlank()) {
      env = System.getProperty("aws.region");
    }
    return env == null || env.isBlank() ? StorageSettings.DEFAULT_REGION : env;
  }

  S3Client client() {
    return s3;
  }

  @Override
  public StorageUri root() {
    return root;
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    String full = root.fullKey(key);
    retrier.run(
        "PUT " + root.resolve(key),
        attempt ->
            s3.putObject(
                b -> b.bucket(root.bucket()).key(full).contentLength((long) bytes.length),
                RequestBody.fromContentProvider(
                    () -> new ByteArrayInputStream(bytes), bytes.length, OCTETS)));
  }

  @Override
  public void put(String key, Path file) throws IOException {
    String full = root.fullKey(key);
    String uri = root.resolve(key);
    if (!Files.isRegularFile(file)) {
      throw new StorageException("PUT " + uri + ": source " + file + " is not a regular file");
    }
    long size = Files.size(file);
    if (size <= settings.partSize()) {
      retrier.run(
          "PUT " + uri,
          attempt ->
              s3.putObject(
                  b -> b.bucket(root.bucket()).key(full).contentLength(size),
                  RequestBody.fromContentProvider(() -> open(file, 0, size), size, OCTETS)));
      return;
    }
    multipartUpload(full, uri, file, size);
  }

  private static RangeInputStream open(Path file, long offset, long length) {
    try {
      return new RangeInputStream(file, offset, length);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void multipartUpload(String full, String uri, Path file, long size) throws IOException {
    long partSize = settings.partSize();
    long partCount = (size + partSize - 1) / partSize;
    if (partCount > MAX_PARTS) {
      throw new StorageException(
          String.format(
              "PUT %s: %d bytes need %d parts of %d bytes, more than S3's %d; raise partSize",
              uri, size, partCount, partSize, MAX_PARTS));
    }
    String uploadId =
        retrier.run(
            "CreateMultipartUpload " + uri,
            attempt ->
                s3.createMultipartUpload(b -> b.bucket(root.bucket()).key(full).contentType(OCTETS))
                    .uploadId());
    int parts = (int) partCount;
    int threads = (int) Math.min(settings.uploadConcurrency(), parts);
    AtomicInteger threadId = new AtomicInteger();
    ExecutorService pool =
        Executors.newFixedThreadPool(
            threads,
            r -> {
              Thread t = new Thread(r, "s3-upload-" + threadId.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    boolean completed = false;
    try {
      List<Future<CompletedPart>> futures = new ArrayList<>(parts);
      for (int i = 0; i < parts; i++) {
        int partNumber = i + 1;
        long offset = i * partSize;
        long length = Math.min(partSize, size - offset);
        futures.add(
            pool.submit(
                () ->
                    retrier.run(
                        "UploadPart " + partNumber + "/" + parts + " " + uri,
                        attempt -> {
                          String etag =
                              s3.uploadPart(
                                      b ->
                                          b.bucket(root.bucket())
                                              .key(full)
                                              .uploadId(uploadId)
                                              .partNumber(partNumber)
                                              .contentLength(length),
                                      RequestBody.fromContentProvider(
                                          () -> open(file, offset, length), length, OCTETS))
                                  .eTag();
                          return CompletedPart.builder().partNumber(partNumber).eTag(etag).build();
                        })));
      }
      CompletedPart[] done = new CompletedPart[parts];
      for (int i = 0; i < parts; i++) {
        done[i] = await(futures.get(i), uri);
      }
      retrier.run(
          "CompleteMultipartUpload " + uri,
          attempt -> {
            try {
              return s3.completeMultipartUpload(
                  b ->
                      b.bucket(root.bucket())
                          .key(full)
                          .uploadId(uploadId)
                          .multipartUpload(m -> m.parts(Arrays.asList(done))));
            } catch (AwsServiceException e) {
              // A retried Complete whose first attempt succeeded finds no upload any more.
              if (attempt > 1 && "NoSuchUpload".equals(errorCode(e))) {
                OptionalLong now = headSize(full);
                if (now.isPresent() && now.getAsLong() == size) {
                  return null;
                }
              }
              throw e;
            }
          });
      completed = true;
    } finally {
      pool.shutdownNow();
      if (!completed) {
        // Let parts in flight finish or fail first, so none lands after the abort.
        try {
          pool.awaitTermination(settings.socketTimeout().toSeconds() + 5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        abort(full, uri, uploadId);
      }
    }
  }

  private static CompletedPart await(Future<CompletedPart> future, String uri)
      throws StorageException {
    try {
      return future.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StorageException("PUT " + uri + " interrupted", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof StorageException se) {
        throw se;
      }
      throw new StorageException("PUT " + uri + " failed: " + describe(e.getCause()), e.getCause());
    }
  }

  private void abort(String full, String uri, String uploadId) {
    try {
      // Short budget: the caller is already failing; lifecycle rules clean up what remains.
      retrier(
              new RetryPolicy(
                  3,
                  settings.retry().initialBackoff(),
                  settings.retry().maxBackoff(),
                  java.time.Duration.ofSeconds(10)))
          .run(
              "AbortMultipartUpload " + uri,
              attempt ->
                  s3.abortMultipartUpload(
                      b -> b.bucket(root.bucket()).key(full).uploadId(uploadId)));
      LOG.warn("Aborted the multipart upload of {} after a failure", uri);
    } catch (StorageException | RuntimeException e) {
      LOG.warn(
          "Could not abort the multipart upload of {} ({}); its parts stay until a lifecycle rule"
              + " removes incomplete uploads",
          uri,
          e.getMessage());
    }
  }

  @Override
  public boolean putIfAbsent(String key, byte[] bytes) throws IOException {
    String full = root.fullKey(key);
    String uri = root.resolve(key);
    PutObjectRequest request =
        PutObjectRequest.builder()
            .bucket(root.bucket())
            .key(full)
            .contentLength((long) bytes.length)
            .ifNoneMatch("*")
            .build();
    return retrier.run(
        "PUT (If-None-Match: *) " + uri,
        attempt -> {
          try {
            s3.putObject(
                request,
                RequestBody.fromContentProvider(
                    () -> new ByteArrayInputStream(bytes), bytes.length, OCTETS));
            return true;
          } catch (AwsServiceException e) {
            if (e.statusCode() != 412) {
              throw e;
            }
            if (attempt > 1) {
              // An earlier attempt may have landed before its response was lost: the object is
              // ours if it holds exactly our bytes.
              try {
                return Arrays.equals(
                    bytes,
                    s3.getObjectAsBytes(b -> b.bucket(root.bucket()).key(full)).asByteArray());
              } catch (NoSuchKeyException gone) {
                throw e;
              }
            }
            return false;
          }
        });
  }

  @Override
  public void get(String key, Path target) throws IOException {
    String full = root.fullKey(key);
    String uri = root.resolve(key);
    Path parent = target.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path temp = parent.resolve(".kubetune-tmp-" + target.getFileName() + "-" + UUID.randomUUID());
    try {
      retrier.run(
          "GET " + uri,
          attempt -> {
            Files.deleteIfExists(temp);
            try {
              return s3.getObject(
                  b -> b.bucket(root.bucket()).key(full), ResponseTransformer.toFile(temp));
            } catch (NoSuchKeyException e) {
              throw new ObjectNotFoundException("GET " + uri + ": no such object");
            }
          });
      try {
        Files.move(
            temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  @Override
  public byte[] getBytes(String key) throws IOException {
    String full = root.fullKey(key);
    String uri = root.resolve(key);
    return retrier.run(
        "GET " + uri,
        attempt -> {
          try {
            return s3.getObjectAsBytes(b -> b.bucket(root.bucket()).key(full)).asByteArray();
          } catch (NoSuchKeyException e) {
            throw new ObjectNotFoundException("GET " + uri + ": no such object");
          }
        });
  }

  @Override
  public List<ObjectInfo> list(String prefix, boolean recursive) throws IOException {
    String p = Keys.checkPrefix(prefix, root.toString());
    String fullPrefix = root.prefix() + p;
    List<ObjectInfo> out = new ArrayList<>();
    String token = null;
    int page = 0;
    do {
      String continuation = token;
      page++;
      ListObjectsV2Request request =
          ListObjectsV2Request.builder()
              .bucket(root.bucket())
              .prefix(fullPrefix)
              .delimiter(recursive ? null : "/")
              .maxKeys(settings.listPageSize())
              .continuationToken(continuation)
              .build();
      ListObjectsV2Response response =
          retrier.run(
              "LIST " + root + p + " (page " + page + ")", attempt -> s3.listObjectsV2(request));
      for (S3Object o : response.contents()) {
        out.add(ObjectInfo.object(relative(o.key()), o.size() == null ? 0 : o.size()));
      }
      for (CommonPrefix cp : response.commonPrefixes()) {
        out.add(ObjectInfo.folder(relative(cp.prefix())));
      }
      token = Boolean.TRUE.equals(response.isTruncated()) ? response.nextContinuationToken() : null;
    } while (token != null);
    out.sort(Comparator.comparing(ObjectInfo::key));
    return out;
  }

  private String relative(String fullKey) {
    return fullKey.substring(root.prefix().length());
  }

  @Override
  public OptionalLong size(String key) throws IOException {
    String full = root.fullKey(key);
    return retrier.run("HEAD " + root.resolve(key), attempt -> headSize(full));
  }

  private OptionalLong headSize(String full) {
    try {
      return OptionalLong.of(s3.headObject(b -> b.bucket(root.bucket()).key(full)).contentLength());
    } catch (NoSuchKeyException e) {
      return OptionalLong.empty();
    } catch (AwsServiceException e) {
      if (e.statusCode() == 404) {
        return OptionalLong.empty();
      }
      throw e;
    }
  }

  @Override
  public void delete(String key) throws IOException {
    String full = root.fullKey(key);
    retrier.run(
        "DELETE " + root.resolve(key),
        attempt -> s3.deleteObject(b -> b.bucket(root.bucket()).key(full)));
  }

  @Override
  public void delete(Collection<String> keys) throws IOException {
    List<String> full = new ArrayList<>(keys.size());
    for (String key : keys) {
      full.add(root.fullKey(key)); // validate all before deleting any
    }
    List<String> distinct = new ArrayList<>(new LinkedHashSet<>(full));
    for (int from = 0; from < distinct.size(); from += MAX_DELETE_BATCH) {
      List<String> batch =
          distinct.subList(from, Math.min(distinct.size(), from + MAX_DELETE_BATCH));
      Set<String> remaining = new LinkedHashSet<>(batch);
      retrier.run(
          "DELETE " + batch.size() + " objects under " + root,
          attempt -> {
            List<ObjectIdentifier> ids =
                remaining.stream().map(k -> ObjectIdentifier.builder().key(k).build()).toList();
            DeleteObjectsResponse response =
                s3.deleteObjects(
                    b ->
                        b.bucket(root.bucket())
                            .delete(Delete.builder().objects(ids).quiet(true).build()));
            Set<String> failed = new LinkedHashSet<>();
            List<S3Error> errors = new ArrayList<>();
            for (S3Error error : response.errors()) {
              if (!"NoSuchKey".equals(error.code())) {
                failed.add(error.key());
                errors.add(error);
              }
            }
            remaining.retainAll(failed);
            if (!errors.isEmpty()) {
              throw new BatchDeleteException(errors, root.prefix().length());
            }
            return null;
          });
    }
  }

  /** Some keys of a DeleteObjects call failed; retried when every failure is transient. */
  static final class BatchDeleteException extends RuntimeException {
    final boolean transientOnly;

    BatchDeleteException(List<S3Error> errors, int prefixLength) {
      super(
          errors.size()
              + " keys not deleted, e.g. "
              + errors.stream()
                  .limit(3)
                  .map(e -> e.key().substring(prefixLength) + " (" + e.code() + ")")
                  .collect(Collectors.joining(", ")));
      this.transientOnly = errors.stream().allMatch(e -> RETRYABLE_CODES.contains(e.code()));
    }
  }

  private static Retrier retrier(RetryPolicy policy) {
    return new Retrier(
        policy,
        S3ObjectStore::isRetryable,
        S3ObjectStore::isStaleConnection,
        S3ObjectStore::describe,
        Retrier.Clock.SYSTEM,
        S3ObjectStore::refusal);
  }

  /**
   * A bucket that does not exist is the user's input (a typo in the URI, or the wrong endpoint),
   * not an outage: refused at once as {@link NoSuchBucketException}, never retried.
   */
  static RuntimeException refusal(String what, Throwable e) {
    if (e instanceof AwsServiceException ase && "NoSuchBucket".equals(errorCode(ase))) {
      return new NoSuchBucketException(what, describe(e));
    }
    return null;
  }

  /**
   * HttpURLConnection reuses keep-alive connections without checking them and does not retry a PUT
   * itself; a connection the server has closed meanwhile fails like this before any byte reached
   * the server. Against S3Proxy 4.1 about one signed PUT in ten fails like this on the first
   * attempt (unsigned PUTs from plain HttpURLConnection do not; not diagnosed further).
   */
  static boolean isStaleConnection(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String m = t.getMessage();
      if (t instanceof IOException
          && m != null
          && (m.contains("Error writing request body to server")
              || m.contains("Unexpected end of file from server")
              || m.contains("Connection reset")
              || m.contains("Broken pipe"))) {
        return true;
      }
    }
    return false;
  }

  static boolean isRetryable(Throwable e) {
    if (e instanceof BatchDeleteException b) {
      return b.transientOnly;
    }
    if (e instanceof AwsServiceException ase) {
      int status = ase.statusCode();
      return status >= 500
          || status == 429
          || status == 408
          || RETRYABLE_CODES.contains(errorCode(ase));
    }
    if (e instanceof ApiCallAttemptTimeoutException || e instanceof ApiCallTimeoutException) {
      return true;
    }
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof InterruptedIOException && !(t instanceof java.net.SocketTimeoutException)) {
        return false;
      }
      if (t instanceof IOException || t instanceof UncheckedIOException) {
        return true;
      }
    }
    return false;
  }

  private static String errorCode(AwsServiceException e) {
    return e.awsErrorDetails() == null ? null : e.awsErrorDetails().errorCode();
  }

  /** Status, error code and message of a failure; no headers, no credentials. */
  static String describe(Throwable e) {
    if (e instanceof AwsServiceException ase) {
      String code = errorCode(ase);
      String message = ase.awsErrorDetails() == null ? null : ase.awsErrorDetails().errorMessage();
      return "HTTP "
          + ase.statusCode()
          + (code == null ? "" : " " + code)
          + (message == null ? "" : ": " + message)
          + (ase.requestId() == null ? "" : " (request id " + ase.requestId() + ")");
    }
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    if (root != e && root.getMessage() != null && !msg.contains(root.getMessage())) {
      msg += " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
    }
    return msg;
  }

  @Override
  public void close() {
    s3.close();
    if (ownedCredentials != null) {
      try {
        ownedCredentials.close();
      } catch (Exception e) {
        LOG.debug("Closing the credentials chain failed", e);
      }
    }
  }

  @Override
  public String toString() {
    return "S3ObjectStore["
        + root
        + (settings.endpoint() == null ? "" : ", endpoint " + settings.endpoint())
        + ", region "
        + region(settings)
        + (settings.pathStyle() ? ", path-style" : "")
        + "]";
  }
}
