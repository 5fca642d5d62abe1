package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.kubetune.operator.Names;
import org.jboss.logging.Logger;

/** Reads the tail of the trainer container's log through the pods/log API. */
final class TrainerLogs {
  /** Enough for the last progress, eval and done lines of a chatty trainer. */
  static final int TAIL_LINES = 200;

  private static final Logger LOG = Logger.getLogger(TrainerLogs.class);

  private TrainerLogs() {}

  /** The log tail, or null when it cannot be read (the pod is gone, the node is down, ...). */
  static String tail(KubernetesClient client, Pod pod) {
    try {
      return client
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
}
