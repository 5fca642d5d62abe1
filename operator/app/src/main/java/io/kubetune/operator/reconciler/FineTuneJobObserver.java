package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.Mappers;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.Labels;
import io.kubetune.operator.status.PodFacts;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * What the controller reads before it decides anything: the training Job, its pods and the serving
 * Deployment from the informers' caches, and (only when it can have changed) the trainer's log
 * tail. Also declares the informers it reads, the Job's and the pods'.
 */
final class FineTuneJobObserver {

  /** The training Job, its pods and the serving Deployment, as cached. */
  record Observed(Optional<Job> job, List<Pod> pods, Deployment servingDeployment) {}

  private FineTuneJobObserver() {}

  /**
   * Children are found by name; one that a controller reference ties to another FineTuneJob of the
   * same name (deleted and created again, while the cache still holds the old one's Job) is not
   * this one's: its status would be taken for this run's.
   */
  static Observed observe(FineTuneJob cr, Context<FineTuneJob> context) {
    String uid = cr.getMetadata().getUid();
    Optional<Job> job =
        context
            .getSecondaryResource(Job.class, TrainingJobGate.JOBS)
            .filter(j -> controlledBy(j, uid));
    List<Pod> pods = job.map(j -> podsOf(j, context)).orElse(List.of());
    Deployment serving =
        context
            .getSecondaryResource(Deployment.class)
            .filter(d -> controlledBy(d, uid))
            .orElse(null);
    return new Observed(job, pods, serving);
  }

  /** Whether {@code child} has no controller reference, or one to the object {@code uid}. */
  static boolean controlledBy(HasMetadata child, String uid) {
    return child.getMetadata().getOwnerReferences() == null
        || child.getMetadata().getOwnerReferences().stream()
            .filter(o -> Boolean.TRUE.equals(o.getController()))
            .allMatch(o -> Objects.equals(o.getUid(), uid));
  }

  /**
   * The tail of the current trainer pod's log while it runs, and once more after it stopped; null
   * when there is nothing new to read (no pod, a Job being replaced, or a stopped pod whose final
   * progress is already in status).
   */
  static String trainerLog(
      Context<FineTuneJob> context,
      FineTuneJobStatus previous,
      List<Pod> pods,
      boolean jobIsStale) {
    Optional<Pod> current = PodFacts.currentPod(pods);
    if (current.isEmpty() || jobIsStale) {
      return null;
    }
    boolean running = PodFacts.isRunning(current.get());
    if (!running && progressFinal(previous, current.get())) {
      return null;
    }
    return TrainerLogs.tail(context.getClient(), current.get());
  }

  /**
   * True when the status already shows the final progress of this (stopped) pod: its log was read
   * after it stopped. Avoids re-reading logs of finished pods on every resync.
   */
  static boolean progressFinal(FineTuneJobStatus previous, Pod pod) {
    return previous != null
        && pod.getMetadata().getName().equals(previous.podName)
        && previous.phase != null
        && previous.phase != Phase.Running
        && previous.phase != Phase.Queued
        && previous.phase != Phase.Pending;
  }

  /** Jobs this operator created (by owner reference), and their pods (by kubetune.io/job). */
  static List<InformerEventSource<? extends HasMetadata, FineTuneJob>> informers(
      EventSourceContext<FineTuneJob> context) {
    var jobs =
        new InformerEventSource<>(
            InformerEventSourceConfiguration.from(Job.class, FineTuneJob.class)
                .withName(TrainingJobGate.JOBS)
                .withLabelSelector(Labels.MANAGED_SELECTOR)
                .withSecondaryToPrimaryMapper(Mappers.fromOwnerReferences(FineTuneJob.class))
                .build(),
            context);
    // Pods are owned by the Job, not by the FineTuneJob: map them through the kubetune.io/job
    // label, which the pod template carries.
    var pods =
        new InformerEventSource<>(
            InformerEventSourceConfiguration.from(Pod.class, FineTuneJob.class)
                .withName("pods")
                .withLabelSelector(Labels.MANAGED_SELECTOR)
                .withSecondaryToPrimaryMapper(
                    (Pod pod) -> {
                      var labels = pod.getMetadata().getLabels();
                      String owner = labels == null ? null : labels.get(Labels.JOB);
                      return owner == null
                          ? Set.of()
                          : Set.of(new ResourceID(owner, pod.getMetadata().getNamespace()));
                    })
                .build(),
            context);
    return List.of(jobs, pods);
  }

  private static List<Pod> podsOf(Job job, Context<FineTuneJob> context) {
    String uid = job.getMetadata().getUid();
    return context
        .getSecondaryResourcesAsStream(Pod.class)
        .filter(
            p ->
                p.getMetadata().getOwnerReferences() != null
                    && p.getMetadata().getOwnerReferences().stream()
                        .anyMatch(o -> Objects.equals(o.getUid(), uid)))
        .toList();
  }
}
