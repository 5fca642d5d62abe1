package io.kubetune.local;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;
import java.util.function.Supplier;

/**
 * The Kubernetes API of local mode: the Fabric8 mock server in CRUD mode on 127.0.0.1. It stores
 * and watches objects like an API server but has no controllers, no admission, no garbage
 * collection and no discovery endpoints (so kubectl cannot talk to it).
 */
final class EmbeddedApiServer implements AutoCloseable {
  private final KubernetesMockServer server;
  private final KubernetesClient client;

  EmbeddedApiServer() {
    // The mixed dispatcher stores objects like the CRUD one and also answers registered
    // expectations, which is how pod logs are served (see servePodLog).
    Map<ServerRequest, Queue<ServerResponse>> responses = new HashMap<>();
    server =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            responses,
            new KubernetesMixedDispatcher(responses),
            false);
    server.init(InetAddress.getLoopbackAddress(), 0);
    client = server.createClient();
  }

  KubernetesClient client() {
    return client;
  }

  String url() {
    return client.getConfiguration().getMasterUrl();
  }

  /** Installs the committed CRD, as a platform team would with kubectl apply -f crds/. */
  void installCrd(Path crdFile) throws IOException {
    try (InputStream in = Files.newInputStream(crdFile)) {
      CustomResourceDefinition crd =
          client.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class);
      client.apiextensions().v1().customResourceDefinitions().resource(crd).create();
    }
  }

  void createNamespace(String name) {
    client
        .namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build())
        .createOr(existing -> existing.update());
  }

  /** Creates a Secret (local credentials only: the embedded S3 server's fixed keys). */
  void createSecret(String namespace, String name, Map<String, String> data) {
    client
        .secrets()
        .inNamespace(namespace)
        .resource(
            new io.fabric8.kubernetes.api.model.SecretBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(namespace)
                .endMetadata()
                // data, not stringData: the embedded server does not convert stringData.
                .withData(
                    data.entrySet().stream()
                        .collect(
                            java.util.stream.Collectors.toMap(
                                Map.Entry::getKey,
                                e ->
                                    java.util.Base64.getEncoder()
                                        .encodeToString(
                                            e.getValue()
                                                .getBytes(
                                                    java.nio.charset.StandardCharsets.UTF_8)))))
                .build())
        .createOr(existing -> existing.update());
  }

  /**
   * Serves a pod's log on the pods/log API, as a kubelet would, for the request the operator makes
   * (the last {@code tailLines} lines of the trainer container).
   */
  void servePodLog(String namespace, String pod, int tailLines, Supplier<String> log) {
    server
        .expect()
        .get()
        .withPath(
            "/api/v1/namespaces/"
                + namespace
                + "/pods/"
                + pod
                + "/log?pretty=false&container=trainer&tailLines="
                + tailLines)
        .andReply(200, request -> log.get())
        .always();
  }

  @Override
  public void close() {
    client.close();
    server.destroy();
  }
}
