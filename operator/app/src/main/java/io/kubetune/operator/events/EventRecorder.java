package io.kubetune.operator.events;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.kubetune.operator.Names;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.jboss.logging.Logger;

/**
 * Writes core/v1 Events about a resource, so {@code kubectl describe ftj} tells the story. An Event
 * that cannot be written is logged and otherwise ignored: it must never fail a reconcile.
 */
public final class EventRecorder {
  static final String COMPONENT = "kubetune-operator";
  private static final Logger LOG = Logger.getLogger(EventRecorder.class);

  private EventRecorder() {}

  /**
   * Records an Event once: {@code dedupKey} identifies the occurrence (e.g. the phase transition
   * and attempt). The Event's name is derived from it, so a second reconcile that sees the same
   * transition (say, from a cache that has not caught up with the last status patch) gets a 409
   * from the API server instead of a duplicate Event.
   */
  public static void record(
      KubernetesClient client, HasMetadata about, Reason reason, String message, String dedupKey) {
    String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    Event event =
        new EventBuilder()
            .withNewMetadata()
            .withName(Names.event(about, reason.name() + "|" + dedupKey))
            .withNamespace(about.getMetadata().getNamespace())
            .endMetadata()
            .withNewInvolvedObject()
            .withApiVersion(about.getApiVersion())
            .withKind(about.getKind())
            .withName(about.getMetadata().getName())
            .withNamespace(about.getMetadata().getNamespace())
            .withUid(about.getMetadata().getUid())
            .withResourceVersion(about.getMetadata().getResourceVersion())
            .endInvolvedObject()
            .withType(reason.type().name())
            .withReason(reason.name())
            .withMessage(message)
            .withFirstTimestamp(now)
            .withLastTimestamp(now)
            .withCount(1)
            .withNewSource()
            .withComponent(COMPONENT)
            .endSource()
            .withReportingComponent(COMPONENT)
            .build();
    try {
      client.v1().events().inNamespace(about.getMetadata().getNamespace()).resource(event).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() == 409) {
        return; // already recorded
      }
      LOG.warnf(
          "could not record event %s for %s/%s: %s",
          reason,
          about.getMetadata().getNamespace(),
          about.getMetadata().getName(),
          e.getMessage());
    }
  }
}
