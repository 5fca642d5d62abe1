package io.kubetune.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.Phase;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The packaged Quarkus application: CDI wiring, configuration, the operator started by QOSDK
 * against a CRUD mock API server, and the health and metrics endpoints.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true)
class OperatorSmokeTest {

  @Inject KubernetesClient client;

  @TestHTTPResource("/q/metrics")
  URL metrics;

  @TestHTTPResource("/q/health/ready")
  URL ready;

  @Test
  void operatorReconcilesAndExposesHealthAndMetrics() throws Exception {
    TestResources.installCrd(client);
    FineTuneJob cr = TestResources.minimal("smoke");
    cr.getMetadata().setUid(null);
    cr.getMetadata().setGeneration(null);
    client.resource(cr).create();

    await()
        .atMost(Duration.ofSeconds(20))
        .until(
            () ->
                client.batch().v1().jobs().inNamespace("default").withName("smoke-train").get()
                    != null);
    await()
        .atMost(Duration.ofSeconds(20))
        .until(
            () -> {
              FineTuneJob current =
                  client
                      .resources(FineTuneJob.class)
                      .inNamespace("default")
                      .withName("smoke")
                      .get();
              return current.getStatus() != null && current.getStatus().phase == Phase.Queued;
            });
    // The image comes from application.properties (kubetune.trainer.image).
    assertThat(
            client
                .batch()
                .v1()
                .jobs()
                .inNamespace("default")
                .withName("smoke-train")
                .get()
                .getSpec()
                .getTemplate()
                .getSpec()
                .getContainers()
                .get(0)
                .getImage())
        .isEqualTo("ghcr.io/kubetune/kubetune-trainer:0.1.0");

    HttpClient http = HttpClient.newHttpClient();
    HttpResponse<String> health =
        http.send(
            HttpRequest.newBuilder(ready.toURI()).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(health.statusCode()).isEqualTo(200);

    HttpResponse<String> scrape =
        http.send(
            HttpRequest.newBuilder(metrics.toURI()).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(scrape.statusCode()).isEqualTo(200);
    assertThat(scrape.body())
        .contains("kubetune_reconciles_total")
        .contains("kubetune_reconcile_duration_seconds")
        .contains("kubetune_finetunejobs{phase=\"Queued\"}")
        .contains("kubetune_child_writes_total");
  }
}
