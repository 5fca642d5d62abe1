package io.kubetune.trainer.storage;

import java.net.URI;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.blobstore.BlobStore;
import org.gaul.s3proxy.nio2blob.TransientNio2BlobStore;

/**
 * A real S3Proxy on 127.0.0.1 with an in-memory store, for tests and the benchmark. It can be
 * stopped and started again on the same port with the same data, to simulate an outage.
 */
public final class S3ProxyServer implements AutoCloseable {
  public static final String ACCESS_KEY = "AKIAKUBETUNEFAKEKEY1";
  public static final String SECRET_KEY = "kubetune-fake-secret-DO-NOT-LOG-7f3a9c";

  /** Makes the default AWS credentials chain of this JVM use the test server's keys. */
  public static void useTestCredentials() {
    System.setProperty("aws.accessKeyId", ACCESS_KEY);
    System.setProperty("aws.secretAccessKey", SECRET_KEY);
  }

  public static void clearTestCredentials() {
    System.clearProperty("aws.accessKeyId");
    System.clearProperty("aws.secretAccessKey");
  }

  private final BlobStore blobStore;
  private S3Proxy proxy;
  private int port;

  private S3ProxyServer(BlobStore blobStore) {
    this.blobStore = blobStore;
  }

  /** Starts on a random port with buckets {@code buckets}. */
  public static S3ProxyServer start(String... buckets) throws Exception {
    S3ProxyServer server = new S3ProxyServer(new TransientNio2BlobStore());
    for (String bucket : buckets) {
      server.blobStore.createContainer(bucket);
    }
    server.startOn(0);
    return server;
  }

  private void startOn(int requestedPort) throws Exception {
    proxy =
        S3Proxy.builder()
            .blobStore(blobStore)
            .endpoint(URI.create("http://127.0.0.1:" + requestedPort))
            .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
            .build();
    proxy.start();
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (!"STARTED".equals(proxy.getState())) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("S3Proxy did not start: " + proxy.getState());
      }
      Thread.onSpinWait();
    }
    port = proxy.getPort();
  }

  /** Stops serving; the port is free and connections are refused. */
  public void stop() throws Exception {
    if (proxy != null) {
      proxy.stop();
      proxy = null;
    }
  }

  /** Serves again on the same port with the same data. */
  public void restart() throws Exception {
    startOn(port);
  }

  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + port);
  }

  public int port() {
    return port;
  }

  BlobStore blobStore() {
    return blobStore;
  }

  @Override
  public void close() throws Exception {
    stop();
  }
}
