package io.kubetune.operator.serving;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.operator.Names;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * {@link ServingFacts} in a cluster: the serving Deployment's pods (by its selector) that are
 * Ready, each asked {@code GET http://<podIP>:8000/v1/variants} with a short timeout. A pod that
 * does not answer, or answers something else, is left out and logged.
 */
public final class PodVariants implements ServingFacts {
  static final Duration TIMEOUT = Duration.ofSeconds(2);

  private static final Logger LOG = Logger.getLogger(PodVariants.class);

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
  private final int port;

  /** Asks each pod on the serving port ({@link Names#SERVING_PORT}). */
  public PodVariants() {
    this(Names.SERVING_PORT);
  }

  /** Asks each pod on {@code port} (tests stand in for pods on a free port). */
  PodVariants(int port) {
    this.port = port;
  }

  @Override
  public List<VariantsReport> variants(KubernetesClient client, Deployment deployment) {
    List<VariantsReport> reports = new ArrayList<>();
    List<Pod> pods =
        client
            .pods()
            .inNamespace(deployment.getMetadata().getNamespace())
            .withLabels(deployment.getSpec().getSelector().getMatchLabels())
            .list()
            .getItems();
    for (Pod pod : pods) {
      String ip = pod.getStatus() == null ? null : pod.getStatus().getPodIP();
      if (ip == null || !isReady(pod)) {
        continue;
      }
      String host = ip.contains(":") ? "[" + ip + "]" : ip;
      try {
        HttpResponse<String> response =
            http.send(
                HttpRequest.newBuilder(URI.create("http://" + host + ":" + port + "/v1/variants"))
                    .timeout(TIMEOUT)
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200) {
          reports.add(VariantsReport.parse(response.body()));
        } else {
          LOG.debugf(
              "pod %s answered /v1/variants with %d",
              pod.getMetadata().getName(), response.statusCode());
        }
      } catch (IOException | IllegalArgumentException e) {
        LOG.debugf("pod %s: /v1/variants unknown: %s", pod.getMetadata().getName(), e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    return reports;
  }

  static boolean isReady(Pod pod) {
    return pod.getStatus().getConditions() != null
        && pod.getStatus().getConditions().stream()
            .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }
}
