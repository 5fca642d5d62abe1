package io.kubetune.local;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.blobstore.BlobStore;
import org.gaul.s3proxy.nio2blob.FilesystemNio2BlobStore;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * The S3-compatible server of local mode: S3Proxy on 127.0.0.1 with a filesystem store under the
 * state folder, so s3:// URIs work without any cloud account. Its credentials are fixed and only
 * valid for this local server.
 */
final class EmbeddedObjectStore implements AutoCloseable {
  static final String ACCESS_KEY = "kubetune-local";
  static final String SECRET_KEY = "kubetune-local-secret";

  private final BlobStore blobStore;
  private final S3Proxy proxy;

  EmbeddedObjectStore(Path directory, int port) throws Exception {
    Files.createDirectories(directory);
    blobStore = new FilesystemNio2BlobStore(directory.toAbsolutePath().toString());
    proxy =
        S3Proxy.builder()
            .blobStore(blobStore)
            .endpoint(URI.create("http://127.0.0.1:" + port))
            .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
            .build();
    proxy.start();
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (!"STARTED".equals(proxy.getState())) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "the embedded S3 server did not start: " + proxy.getState());
      }
      Thread.sleep(20);
    }
  }

  URI endpoint() {
    return URI.create("http://127.0.0.1:" + proxy.getPort());
  }

  void ensureBucket(String bucket) {
    if (!blobStore.containerExists(bucket)) {
      blobStore.createContainer(bucket);
    }
  }

  /** Uploads a file, or every file under a folder (keys below {@code prefix}). */
  void upload(Path source, String bucket, String key) throws IOException {
    if (Files.isDirectory(source)) {
      String prefix = key.isEmpty() || key.endsWith("/") ? key : key + "/";
      try (Stream<Path> files = Files.walk(source)) {
        for (Path file : files.filter(Files::isRegularFile).toList()) {
          upload(file, bucket, prefix + source.relativize(file).toString().replace('\\', '/'));
        }
      }
      return;
    }
    try (var in = Files.newInputStream(source)) {
      blobStore.putBlob(
          PutObjectRequest.builder()
              .bucket(bucket)
              .key(key)
              .contentLength(Files.size(source))
              .build(),
          in);
    }
  }

  /** Downloads every object under {@code prefix} into {@code target}. */
  void download(String bucket, String prefix, Path target) throws IOException {
    String token = null;
    do {
      ListObjectsV2Response page =
          blobStore.list(
              ListObjectsV2Request.builder()
                  .bucket(bucket)
                  .prefix(prefix)
                  .continuationToken(token)
                  .build());
      for (S3Object object : page.contents()) {
        if (object.key().endsWith("/")) {
          continue;
        }
        Path file = target.resolve(object.key().substring(prefix.length()));
        Files.createDirectories(file.getParent());
        try (var in = blobStore.getBlob(bucket, object.key())) {
          Files.copy(in, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
      token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
    } while (token != null);
  }

  /** The object's bytes, or null when there is none. */
  byte[] readOrNull(String bucket, String key) throws IOException {
    if (!blobStore.containerExists(bucket) || !blobStore.blobExists(bucket, key)) {
      return null;
    }
    try (var in = blobStore.getBlob(bucket, key)) {
      return in.readAllBytes();
    }
  }

  void delete(String bucket, String key) {
    blobStore.removeBlob(bucket, key);
  }

  @Override
  public void close() {
    try {
      proxy.stop();
    } catch (Exception e) {
      // shutting down anyway
    }
  }
}
