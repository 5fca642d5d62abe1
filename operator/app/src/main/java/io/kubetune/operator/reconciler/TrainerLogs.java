package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.RequestConfig;
import io.fabric8.kubernetes.client.RequestConfigBuilder;
import io.kubetune.operator.Names;
import java.time.Duration;
import org.jboss.logging.Logger;

/** Reads the tail of the trainer container's log through the pods/log API. */
final class TrainerLogs {
  /** Enough for the last progress, eval and done lines of a chatty trainer. */
  static final int TAIL_LINES = 200;

  /**
   * One attempt, bounded in time. The API server proxies pods/log to the pod's kubelet and answers
   * 5xx when that kubelet cannot be reached (a node that is down, the usual cause of a disrupted
   * pod); Fabric8 retries 5xx answers with exponential back-off, by default 10 times (about 100 s),
   * which held a reconcile thread that long per poll. A missed poll loses nothing: the next one
   * reads the whole tail again.
   */
  static final Duration READ_TIMEOUT = Duration.ofSeconds(10);

  private static final Logger LOG = Logger.getLogger(TrainerLogs.class);

  private TrainerLogs() {}

  /** The log tail, or null when it cannot be read (the pod is gone, the node is down, ...). */
  static String tail(KubernetesClient client, Pod pod) {
    try {
      return oneAttempt(client)
          .pods()
          .inNamespace(pod.getMetadata().getNamespace())
          .withName(pod.getMetadata().getName())
          .inContainer(Names.TRAINER_CONTAINER)
          .tailingLines(TAIL_LINES)
          .getLog();
    } catch (KubernetesClientException e) {
      LOG.debugf(
          "no log for pod %s/%s: %s",
          pod.getMetadata().getNamespace(), pod.getMetadata().getName(), e.getMessage());
      return null;
    }
  }

  /**
   * The same client (its HTTP client and credentials are shared, nothing to close) with no retry
   * and {@link #READ_TIMEOUT}.
   */
  static KubernetesClient oneAttempt(KubernetesClient client) {
    RequestConfig once =
        new RequestConfigBuilder(client.getConfiguration().getRequestConfig())
            .withRequestRetryBackoffLimit(0)
            .withRequestTimeout((int) READ_TIMEOUT.toMillis())
            .build();
    return client.newClient(once).adapt(KubernetesClient.class);
  }
}
