package io.kubetune.operator.serving;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.kubetune.api.serving.VariantsReport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link PodVariants} against pods of the Fabric8 mock API server whose IPs are loopback addresses
 * where JDK HTTP servers stand in for serving pods (all on one free port, as pods share the serving
 * port): only the Deployment's Ready pods are asked, and a pod that answers an error, junk or
 * nothing at all is left out.
 */
@EnableKubernetesMockClient(crud = true)
class PodVariantsTest {
  static final String NS = "default";
  static final Map<String, String> SELECTOR = Map.of("app.kubernetes.io/instance", "srv");

  KubernetesClient client;

  HttpServer good;
  HttpServer failing;
  HttpServer junk;
  final AtomicInteger goodAsked = new AtomicInteger();

  @BeforeEach
  void startPods() throws IOException {
    VariantsReport report = new VariantsReport();
    report.pod = "srv-serve-a";
    VariantsReport.Variant canary = new VariantsReport.Variant();
    canary.model = "srv";
    canary.variant = VariantsReport.CANARY;
    canary.sha256 = "d2";
    canary.requests = 25;
    canary.errors = 1;
    report.data.add(canary);
    String body = report.toJson();
    good = server("127.0.0.1", 0, 200, body, goodAsked);
    int port = good.getAddress().getPort();
    failing = server("127.0.0.2", port, 503, "{\"error\":\"not loaded\"}", new AtomicInteger());
    junk = server("127.0.0.3", port, 200, "<html>not a report</html>", new AtomicInteger());
  }

  @AfterEach
  void stopPods() {
    for (HttpServer s : new HttpServer[] {good, failing, junk}) {
      if (s != null) {
        s.stop(0);
      }
    }
  }

  @Test
  void asksTheReadyPodsOfTheDeploymentAndLeavesOutThoseThatDoNotAnswerAReport() {
    pod("ready", "127.0.0.1", true, SELECTOR);
    pod("not-ready", "127.0.0.1", false, SELECTOR);
    pod("no-ip-yet", null, true, SELECTOR);
    pod("answers-503", "127.0.0.2", true, SELECTOR);
    pod("answers-junk", "127.0.0.3", true, SELECTOR);
    pod("nobody-listens", "127.0.0.4", true, SELECTOR);
    pod("other-deployment", "127.0.0.1", true, Map.of("app.kubernetes.io/instance", "other"));

    List<VariantsReport> reports =
        new PodVariants(good.getAddress().getPort()).variants(client, deployment());

    assertThat(reports).hasSize(1);
    assertThat(reports.get(0).pod).isEqualTo("srv-serve-a");
    assertThat(reports.get(0).data)
        .singleElement()
        .satisfies(
            v -> {
              assertThat(v.variant).isEqualTo("canary");
              assertThat(v.sha256).isEqualTo("d2");
              assertThat(v.requests).isEqualTo(25);
              assertThat(v.errors).isEqualTo(1);
            });
    // Only the one Ready pod of this Deployment at that address was asked.
    assertThat(goodAsked.get()).isEqualTo(1);
  }

  @Test
  void noReadyPodIsNoReportNotAnError() {
    pod("starting", "127.0.0.1", false, SELECTOR);
    assertThat(new PodVariants(good.getAddress().getPort()).variants(client, deployment()))
        .isEmpty();
    assertThat(goodAsked.get()).isZero();
  }

  private Deployment deployment() {
    return new DeploymentBuilder()
        .withNewMetadata()
        .withName("srv-serve")
        .withNamespace(NS)
        .endMetadata()
        .withNewSpec()
        .withNewSelector()
        .withMatchLabels(SELECTOR)
        .endSelector()
        .endSpec()
        .build();
  }

  private void pod(String name, String ip, boolean ready, Map<String, String> labels) {
    Pod pod =
        client
            .resource(
                new PodBuilder()
                    .withNewMetadata()
                    .withName(name)
                    .withNamespace(NS)
                    .withLabels(labels)
                    .endMetadata()
                    .build())
            .create();
    pod.setStatus(
        new io.fabric8.kubernetes.api.model.PodStatusBuilder()
            .withPodIP(ip)
            .addNewCondition()
            .withType("Ready")
            .withStatus(ready ? "True" : "False")
            .endCondition()
            .build());
    client.resource(pod).updateStatus();
  }

  private static HttpServer server(
      String address, int port, int status, String body, AtomicInteger asked) throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress(address, port), 0);
    server.createContext(
        "/v1/variants",
        exchange -> {
          asked.incrementAndGet();
          byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
          exchange.sendResponseHeaders(status, bytes.length);
          exchange.getResponseBody().write(bytes);
          exchange.close();
        });
    server.start();
    return server;
  }
}
