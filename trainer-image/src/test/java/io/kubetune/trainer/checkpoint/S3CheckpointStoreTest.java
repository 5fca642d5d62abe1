package io.kubetune.trainer.checkpoint;

import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.ObjectStores;
import io.kubetune.trainer.storage.S3ProxyServer;
import io.kubetune.trainer.storage.StorageSettings;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** The checkpoint contract against a real S3Proxy on 127.0.0.1 (list pages of 3 keys). */
class S3CheckpointStoreTest extends CheckpointStoreContractTest {
  static final String BUCKET = "kubetune-checkpoints";
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

  @Override
  ObjectStore open(String name) {
    StorageSettings settings =
        StorageSettings.defaults()
            .withEndpoint(server.endpoint())
            .withRegion("us-east-1")
            .withPathStyle(true)
            .withListPageSize(3);
    return ObjectStores.forUri("s3://" + BUCKET + "/jobs/" + name + "/checkpoints/", settings);
  }
}
