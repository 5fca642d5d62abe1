package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.DeletionPropagation;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.ErrorStatusUpdateControl;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.PrimaryUpdateAndCacheUtils;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.Mappers;
import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanaryStatus;
import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.Labels;
import io.kubetune.operator.events.EventRecorder;
import io.kubetune.operator.events.Reason;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.TrainerConfigMapBuilder;
import io.kubetune.operator.model.TrainingJobBuilder;
import io.kubetune.operator.model.TrainingJobPlan;
import io.kubetune.operator.serving.PodVariants;
import io.kubetune.operator.serving.ServingFacts;
import io.kubetune.operator.serving.ServingOutcome;
import io.kubetune.operator.status.CheckpointWarnings;
import io.kubetune.operator.status.Conditions;
import io.kubetune.operator.status.FineTuneJobStatusAggregator;
import io.kubetune.operator.status.PodFacts;
import io.kubetune.operator.status.ReconcileErrorStatus;
import io.kubetune.operator.status.TrainingObservation;
import io.kubetune.operator.support.Json;
import io.kubetune.operator.validation.FineTuneJobValidator;
import io.kubetune.operator.validation.ValidationProblem;
import io.micrometer.core.instrument.Timer;
import jakarta.inject.Inject;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * Reconciles a FineTuneJob into a trainer ConfigMap and a batch/v1 Job, in a fixed order: observe
 * -> validate -> reconcile children -> aggregate status -> reschedule. Children are written only
 * when they differ from what is wanted, status only when it changed, so an unchanged FineTuneJob
 * costs no write.
 *
 * <p>The Job is handled explicitly rather than as a JOSDK CRUD dependent: its pod template is
 * immutable, it must not be recreated after a finished run is cleaned up by its TTL, and a new
 * training revision means delete-then-create (see {@link TrainingJobPlan}).
 */
@ControllerConfiguration(name = FineTuneJobReconciler.NAME)
public class FineTuneJobReconciler implements Reconciler<FineTuneJob> {
  public static final String NAME = "finetunejob";

  private static final Logger LOG = Logger.getLogger(FineTuneJobReconciler.class);

  /** While a replaced Job is being deleted, look again after this delay. */
  static final Duration REPLACE_POLL = Duration.ofSeconds(5);

  private final OperatorSettings settings;
  private final FineTuneJobMetrics metrics;
  private final ServingFacts servingFacts;

  @Inject
  public FineTuneJobReconciler(OperatorSettings settings, FineTuneJobMetrics metrics) {
    this(settings, metrics, new PodVariants());
  }

  /** With how the serving pods' variant counts are read (local mode reads its own processes). */
  public FineTuneJobReconciler(
      OperatorSettings settings, FineTuneJobMetrics metrics, ServingFacts servingFacts) {
    this.settings = settings;
    this.metrics = metrics;
    this.servingFacts = servingFacts;
  }

  @Override
  public List<EventSource<?, FineTuneJob>> prepareEventSources(
      EventSourceContext<FineTuneJob> context) {
    var jobs = ownedInformer(Job.class, "jobs", context);
    var configMaps = ownedInformer(ConfigMap.class, "configmaps", context);
    var deployments = ownedInformer(Deployment.class, "deployments", context);
    var services = ownedInformer(Service.class, "services", context);
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
    return List.of(jobs, configMaps, pods, deployments, services);
  }

  /** An informer on objects of {@code type} this operator created, mapped by owner reference. */
  private static <R extends HasMetadata> InformerEventSource<R, FineTuneJob> ownedInformer(
      Class<R> type, String name, EventSourceContext<FineTuneJob> context) {
    return new InformerEventSource<>(
        InformerEventSourceConfiguration.from(type, FineTuneJob.class)
            .withName(name)
            .withLabelSelector(Labels.MANAGED_SELECTOR)
            .withSecondaryToPrimaryMapper(Mappers.fromOwnerReferences(FineTuneJob.class))
            .build(),
        context);
  }

  @Override
  public UpdateControl<FineTuneJob> reconcile(FineTuneJob cr, Context<FineTuneJob> context) {
    Timer.Sample sample = metrics.startReconcile();
    metrics.watch(context.getPrimaryCache());
    KubernetesClient client = context.getClient();

    // Observe.
    Optional<Job> job = context.getSecondaryResource(Job.class, "jobs");
    List<Pod> pods = job.map(j -> podsOf(j, context)).orElse(List.of());

    // Validate.
    List<ValidationProblem> problems = FineTuneJobValidator.validate(cr);

    // Resolve the FineTuneJob once: every builder and the status read this model.
    FineTuneJobModel model = problems.isEmpty() ? FineTuneJobModel.from(cr, settings) : null;

    // Reconcile children (only for a valid spec: an invalid edit must not disturb a running Job).
    boolean jobIsStale = false;
    if (model != null) {
      TrainingJobPlan.Action action = TrainingJobPlan.decide(model, job.orElse(null));
      jobIsStale =
          action == TrainingJobPlan.Action.REPLACE
              || (action == TrainingJobPlan.Action.WAIT_FOR_DELETION);
      if (!jobIsStale) {
        reconcileConfigMap(model, context);
      }
      job = applyJobAction(action, model, job, context);
    }

    // Observe the trainer's progress (its log) while it runs, and once more when it stopped.
    FineTuneJobStatus previous = cr.getStatus();
    Optional<Pod> current = PodFacts.currentPod(pods);
    boolean running = current.map(PodFacts::isRunning).orElse(false);
    String trainerLog = null;
    if (current.isPresent()
        && !jobIsStale
        && (running || !progressFinal(previous, current.get()))) {
      trainerLog = TrainerLogs.tail(client, current.get());
    }

    // Aggregate status.
    String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    Deployment servingDeployment =
        context.getSecondaryResource(Deployment.class, "deployments").orElse(null);
    FineTuneJobStatusAggregator.Assessment assessment =
        FineTuneJobStatusAggregator.assess(
            cr,
            model,
            problems,
            new TrainingObservation(job.orElse(null), pods, jobIsStale, trainerLog),
            servingDeployment,
            servingFacts.duringCanary(client, servingDeployment),
            now);
    FineTuneJobStatus next = assessment.status();
    // Serving: make the Deployment and Service follow what serving decided.
    Duration servingRequeue = null;
    if (assessment.serving().isPresent()) {
      ServingOutcome serving = assessment.serving().get();
      applyServing(serving, model, context);
      servingRequeue = serving.requeueAfter();
    }
    recordTransitionEvents(client, cr, previous, next);
    recordCheckpointWarningEvents(client, cr, previous, next);
    recordCanaryEvents(client, cr, previous, next);

    UpdateControl<FineTuneJob> control;
    if (previous != null && Json.canonical(previous).equals(Json.canonical(next))) {
      control = UpdateControl.noUpdate();
      metrics.reconciled(sample, "unchanged");
    } else {
      // A full status update with optimistic locking, cached for the next reconcile. A JSON patch
      // computed against a stale cached copy (UpdateControl.patchStatus without SSA) can apply
      // list additions twice when an earlier write has not reached the informer yet: the
      // checkpoint ledger once showed the same step twice. On a conflict JOSDK re-applies this to
      // the fresh resource; the next reconcile recomputes from the log anyway.
      PrimaryUpdateAndCacheUtils.updateStatusAndCacheResource(
          cr,
          context,
          fresh -> {
            fresh.setStatus(next);
            return fresh;
          });
      control = UpdateControl.noUpdate();
      metrics.reconciled(sample, "status-updated");
    }
    // Reschedule: events from the Job, its pods and the serving Deployment drive everything else;
    // polled are only a replacement in flight (in case the deletion event is missed), a running
    // trainer's log (progress), and a rollout's readiness deadline.
    if (jobIsStale) {
      control.rescheduleAfter(REPLACE_POLL);
    } else if (next.phase == Phase.Running) {
      control.rescheduleAfter(settings.progressPollInterval());
    } else if (servingRequeue != null) {
      control.rescheduleAfter(servingRequeue);
    }
    return control;
  }

  /**
   * True when the status already shows the final progress of this (stopped) pod: its log was read
   * after it stopped. Avoids re-reading logs of finished pods on every resync.
   */
  private static boolean progressFinal(FineTuneJobStatus previous, Pod pod) {
    return previous != null
        && pod.getMetadata().getName().equals(previous.podName)
        && previous.phase != null
        && previous.phase != Phase.Running
        && previous.phase != Phase.Queued
        && previous.phase != Phase.Pending;
  }

  @Override
  public ErrorStatusUpdateControl<FineTuneJob> updateErrorStatus(
      FineTuneJob cr, Context<FineTuneJob> context, Exception e) {
    metrics.reconciled(metrics.startReconcile(), "error");
    LOG.warnf(
        e,
        "reconcile of %s/%s failed",
        cr.getMetadata().getNamespace(),
        cr.getMetadata().getName());
    // Never leave the status empty: say what failed, where a user looks (status and Events).
    // JOSDK still retries with backoff; the next successful reconcile clears the condition.
    try {
      String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
      FineTuneJobStatus next =
          ReconcileErrorStatus.of(cr.getStatus(), e, cr.getMetadata().getGeneration(), now);
      boolean invalid = ReconcileErrorStatus.isBadInput(e);
      EventRecorder.record(
          context.getClient(),
          cr,
          invalid ? Reason.InvalidSpec : Reason.ReconcileError,
          next.message,
          cr.getMetadata().getGeneration() + "|" + next.message);
      if (cr.getStatus() == null || !Json.canonical(cr.getStatus()).equals(Json.canonical(next))) {
        PrimaryUpdateAndCacheUtils.updateStatusAndCacheResource(
            cr,
            context,
            fresh -> {
              fresh.setStatus(next);
              return fresh;
            });
      }
    } catch (RuntimeException statusFailed) {
      LOG.warnf(
          statusFailed,
          "could not write the error status of %s/%s",
          cr.getMetadata().getNamespace(),
          cr.getMetadata().getName());
    }
    return ErrorStatusUpdateControl.noStatusUpdate();
  }

  private void reconcileConfigMap(FineTuneJobModel model, Context<FineTuneJob> context) {
    ConfigMap desired = TrainerConfigMapBuilder.build(model);
    Optional<ConfigMap> actual = context.getSecondaryResource(ConfigMap.class, "configmaps");
    KubernetesClient client = context.getClient();
    if (actual.isEmpty()) {
      createTolerant(client, desired, context, ConfigMap.class, "configmaps");
      metrics.childWritten("ConfigMap", "create");
      return;
    }
    ConfigMap current = actual.get();
    if (Objects.equals(current.getData(), desired.getData())
        && containsAll(current.getMetadata().getLabels(), desired.getMetadata().getLabels())
        && containsAll(
            current.getMetadata().getAnnotations(), desired.getMetadata().getAnnotations())) {
      return;
    }
    ConfigMap updated =
        new ConfigMapBuilder(current)
            .editMetadata()
            .addToLabels(desired.getMetadata().getLabels())
            .addToAnnotations(desired.getMetadata().getAnnotations())
            .endMetadata()
            .withData(desired.getData())
            .build();
    client.configMaps().resource(updated).update();
    metrics.childWritten("ConfigMap", "update");
  }

  private Optional<Job> applyJobAction(
      TrainingJobPlan.Action action,
      FineTuneJobModel model,
      Optional<Job> job,
      Context<FineTuneJob> context) {
    FineTuneJob cr = model.cr();
    KubernetesClient client = context.getClient();
    switch (action) {
      case CREATE -> {
        Job created =
            createTolerant(client, TrainingJobBuilder.build(model), context, Job.class, "jobs");
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
        EventRecorder.record(
            client,
            cr,
            Reason.JobReplaced,
            model.trainingRevision().equals(TrainingJobPlan.revisionOf(stale))
                ? "replacing training Job "
                    + stale.getMetadata().getName()
                    + " to apply changed spec.resources"
                : "deleting training Job "
                    + stale.getMetadata().getName()
                    + " of revision "
                    + TrainingJobPlan.revisionOf(stale)
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

  /** Creates, updates or removes the serving Deployment and Service as decided. */
  private void applyServing(
      ServingOutcome decision, FineTuneJobModel model, Context<FineTuneJob> context) {
    KubernetesClient client = context.getClient();
    Optional<Deployment> deployment = context.getSecondaryResource(Deployment.class, "deployments");
    Optional<Service> service = context.getSecondaryResource(Service.class, "services");
    if (decision.deleteServing()) {
      deployment.ifPresent(
          d -> {
            client.resource(d).delete();
            metrics.childWritten("Deployment", "delete");
          });
      service.ifPresent(
          svc -> {
            client.resource(svc).delete();
            metrics.childWritten("Service", "delete");
          });
      return;
    }
    if (!(decision.workload() instanceof ServingOutcome.Workload.Run run)) {
      return;
    }
    Deployment desired = run.deployment();
    if (deployment.isEmpty()) {
      createTolerant(client, desired, context, Deployment.class, "deployments");
      metrics.childWritten("Deployment", "create");
    } else if (!Objects.equals(
        ServingModel.hashOf(desired), ServingModel.hashOf(deployment.get()))) {
      Deployment current = deployment.get();
      Deployment updated =
          new DeploymentBuilder(current)
              .editMetadata()
              .addToAnnotations(desired.getMetadata().getAnnotations())
              .addToLabels(desired.getMetadata().getLabels())
              .endMetadata()
              .withSpec(desired.getSpec())
              .build();
      client.resource(updated).update();
      metrics.childWritten("Deployment", "update");
    }
    if (service.isEmpty()) {
      createTolerant(client, ServingModel.service(model), context, Service.class, "services");
      metrics.childWritten("Service", "create");
    }
  }

  /**
   * Creates a child and tells its informer at once, so the next reconcile does not create it twice;
   * a 409 means an earlier create already landed.
   */
  @SuppressWarnings("unchecked")
  private static <R extends HasMetadata> R createTolerant(
      KubernetesClient client,
      R desired,
      Context<FineTuneJob> context,
      Class<R> type,
      String eventSourceName) {
    try {
      R created = client.resource(desired).create();
      var source =
          (InformerEventSource<R, FineTuneJob>)
              context.eventSourceRetriever().getEventSourceFor(type, eventSourceName);
      source.handleRecentResourceCreate(ResourceID.fromResource(created), created);
      return created;
    } catch (KubernetesClientException e) {
      if (e.getCode() == 409) {
        return client.resource(desired).get();
      }
      throw e;
    }
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

  /** One event per phase change (and per new validation message), never per reconcile. */
  private static void recordTransitionEvents(
      KubernetesClient client, FineTuneJob cr, FineTuneJobStatus previous, FineTuneJobStatus next) {
    Phase before = previous == null ? null : previous.phase;
    boolean phaseChanged = before != next.phase;
    boolean messageChanged = previous == null || !Objects.equals(previous.message, next.message);
    if (!phaseChanged && !(next.phase == Phase.Failed && messageChanged)) {
      return;
    }
    Reason reason =
        switch (next.phase) {
          case Failed ->
              Conditions.isTrue(next.conditions, Conditions.VALIDATED)
                  ? Reason.Failed
                  : Reason.InvalidSpec;
          case Queued -> Reason.Queued;
          case Running -> Reason.Started;
          case Suspended -> Reason.Suspended;
          case Succeeded -> Reason.Succeeded;
          case Serving -> Reason.Serving;
          default -> null;
        };
    String failedBefore =
        previous == null || previous.serving == null ? null : previous.serving.failedAdapterDigest;
    if (next.serving != null
        && next.serving.failedAdapterDigest != null
        && !next.serving.failedAdapterDigest.equals(failedBefore)) {
      Conditions.findMessage(next.conditions, Conditions.READY)
          .ifPresent(
              message ->
                  EventRecorder.record(
                      client, cr, Reason.RolloutFailed, message, next.serving.failedAdapterDigest));
    }
    if (reason != null) {
      // One Event per (revision, phase, attempt, message): repeated observations of the same
      // transition collapse into the first.
      String occurrence =
          next.trainingRevision + "|" + next.phase + "|" + next.attempts + "|" + next.message;
      EventRecorder.record(client, cr, reason, next.message, occurrence);
    }
  }

  /**
   * One Warning Event per new entry of {@code status.checkpointWarnings} (a checkpoint skipped at
   * resume or one that failed to commit), named after (revision, reason, step): a status cache
   * behind the last patch gets a 409 instead of a duplicate.
   */
  private static void recordCheckpointWarningEvents(
      KubernetesClient client, FineTuneJob cr, FineTuneJobStatus previous, FineTuneJobStatus next) {
    boolean sameRun =
        previous != null && Objects.equals(previous.trainingRevision, next.trainingRevision);
    for (CheckpointWarning warning :
        CheckpointWarnings.added(
            sameRun ? previous.checkpointWarnings : null, next.checkpointWarnings)) {
      Reason reason =
          CheckpointWarning.SKIPPED.equals(warning.reason)
              ? Reason.CheckpointSkipped
              : Reason.CheckpointFailed;
      EventRecorder.record(
          client, cr, reason, warning.message, next.trainingRevision + "|" + warning.step);
    }
  }

  /** One Event per canary started and per canary decision (by digest and decision). */
  private static void recordCanaryEvents(
      KubernetesClient client, FineTuneJob cr, FineTuneJobStatus previous, FineTuneJobStatus next) {
    CanaryStatus before =
        previous == null || previous.serving == null ? null : previous.serving.canary;
    CanaryStatus after = next.serving == null ? null : next.serving.canary;
    if (after == null
        || after.decision == null
        || (before != null
            && Objects.equals(before.adapterDigest, after.adapterDigest)
            && Objects.equals(before.startedAt, after.startedAt)
            && before.decision == after.decision)) {
      return;
    }
    Reason reason =
        switch (after.decision) {
          case Observing -> Reason.CanaryStarted;
          case Promoted ->
              Objects.requireNonNullElse(after.requests, 0L) == 0
                  ? Reason.CanaryPromotedUnobserved
                  : Reason.CanaryPromoted;
          case RolledBack -> Reason.CanaryRolledBack;
        };
    String message =
        after.decision == CanaryDecision.Observing
            ? "canary " + after.adapterUri + " answers " + after.weight + "% of requests"
            : "canary " + after.adapterUri + ": " + after.message;
    EventRecorder.record(
        client,
        cr,
        reason,
        message,
        after.adapterDigest + "|" + after.startedAt + "|" + after.decision);
  }

  private static boolean containsAll(Map<String, String> actual, Map<String, String> wanted) {
    if (wanted == null || wanted.isEmpty()) {
      return true;
    }
    return actual != null && actual.entrySet().containsAll(wanted.entrySet());
  }
}
