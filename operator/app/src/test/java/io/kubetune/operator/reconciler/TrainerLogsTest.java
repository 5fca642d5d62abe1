package io.kubetune.operator.reconciler;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Found on the real API server (ReconcileLoopOnRealApiServerTest in operator/local): pods/log of a
 * pod whose kubelet cannot be reached is a 5xx, which Fabric8 retried for about 100 s, holding the
 * reconcile thread. One attempt, then null.
 */
@EnableKubernetesMockClient
class TrainerLogsTest {
  private static final String LOG_PATH =
      "/api/v1/namespaces/ns/pods/run-train-a1/log?pretty=false&container=trainer&tailLines=200";

  KubernetesMockServer server;
  KubernetesClient client;

  @Test
  void anUnreachableKubeletIsOneAttemptAndNoLog() {
    server
        .expect()
        .get()
        .withPath(LOG_PATH)
        .andReturn(
            500,
            "{\"kind\":\"Status\",\"code\":500,\"message\":\"Get"
                + " \\\"https://10.0.0.7:10250/containerLogs/ns/run-train-a1/trainer\\\": dial tcp"
                + " 10.0.0.7:10250: connect: connection refused\"}")
        .always();
    int before = server.getRequestCount();

    long start = System.nanoTime();
    assertThat(TrainerLogs.tail(client, pod())).isNull();

    // Fabric8 looks the pod up first (it would wait for it to be ready; the operator sets no
    // wait), then reads the log once.
    assertThat(server.getRequestCount() - before).as("requests (pod, log)").isEqualTo(2);
    // With Fabric8's default retries this took about 100 s.
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
  }

  @Test
  void aReadableLogIsReturned() {
    server.expect().get().withPath(LOG_PATH).andReturn(200, "line 1\nline 2\n").once();
    assertThat(TrainerLogs.tail(client, pod())).isEqualTo("line 1\nline 2\n");
  }

  private static Pod pod() {
    return new PodBuilder()
        .withNewMetadata()
        .withName("run-train-a1")
        .withNamespace("ns")
        .endMetadata()
        .build();
  }
}
