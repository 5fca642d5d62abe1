package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.DeletionPropagation;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.events.EventRecorder;
import io.kubetune.operator.events.Reason;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.TrainingJobBuilder;
import io.kubetune.operator.model.TrainingJobPlan;
import java.util.Optional;

/**
 * Carries out what {@link TrainingJobPlan} decided for the training Job. The Job is not a JOSDK
 * CRUD dependent: its pod template is immutable, it must not be recreated after a finished run's
 * Job is removed by its TTL, and a new training revision means delete-then-create. The plan is the
 * explicit gate; this class performs its one action.
 */
final class TrainingJobGate {
  static final String JOBS = "jobs";

  private final FineTuneJobMetrics metrics;

  TrainingJobGate(FineTuneJobMetrics metrics) {
    this.metrics = metrics;
  }

  /** Performs {@code action}; returns the Job as it stands afterwards. */
  Optional<Job> apply(
      TrainingJobPlan.Action action,
      FineTuneJobModel model,
      Optional<Job> job,
      Context<FineTuneJob> context) {
    FineTuneJob cr = model.cr();
    KubernetesClient client = context.getClient();
    switch (action) {
      case CREATE -> {
        Job created = create(client, TrainingJobBuilder.build(model), context);
        metrics.childWritten("Job", "create");
        EventRecorder.record(
            client,
            cr,
            Reason.JobCreated,
            "created training Job " + created.getMetadata().getName(),
            created.getMetadata().getUid());
        return Optional.of(created);
      }
      case REPLACE -> {
        Job stale = job.orElseThrow();
        client
            .batch()
            .v1()
            .jobs()
            .inNamespace(stale.getMetadata().getNamespace())
            .withName(stale.getMetadata().getName())
            .withPropagationPolicy(DeletionPropagation.FOREGROUND)
            .delete();
        metrics.childWritten("Job", "delete");
        String name = stale.getMetadata().getName();
        String staleRevision = TrainingJobPlan.revisionOf(stale);
        EventRecorder.record(
            client,
            cr,
            Reason.JobReplaced,
            model.trainingRevision().equals(staleRevision)
                ? "replacing training Job " + name + " to apply changed spec.resources"
                : "deleting training Job "
                    + name
                    + " of revision "
                    + staleRevision
                    + " to start a new training revision",
            stale.getMetadata().getUid());
        return job;
      }
      case SET_SUSPEND -> {
        boolean suspend = model.suspend();
        Job current = job.orElseThrow();
        Job patched =
            client
                .batch()
                .v1()
                .jobs()
                .inNamespace(current.getMetadata().getNamespace())
                .withName(current.getMetadata().getName())
                .edit(
                    j -> {
                      j.getSpec().setSuspend(suspend);
                      return j;
                    });
        metrics.childWritten("Job", suspend ? "suspend" : "resume");
        return Optional.of(patched);
      }
      default -> {
        return job;
      }
    }
  }

  /**
   * Creates the Job and tells its informer at once, so the next reconcile does not create it twice;
   * a 409 means an earlier create already landed.
   */
  @SuppressWarnings("unchecked")
  private static Job create(KubernetesClient client, Job desired, Context<FineTuneJob> context) {
    try {
      Job created = client.resource(desired).create();
      var source =
          (InformerEventSource<Job, FineTuneJob>)
              context.eventSourceRetriever().getEventSourceFor(Job.class, JOBS);
      source.handleRecentResourceCreate(ResourceID.fromResource(created), created);
      return created;
    } catch (KubernetesClientException e) {
      if (e.getCode() == 409) {
        return client.resource(desired).get();
      }
      throw e;
    }
  }
}
