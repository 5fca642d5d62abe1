package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.ErrorStatusUpdateControl;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.PrimaryUpdateAndCacheUtils;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.dependent.Desired;
import io.kubetune.operator.dependent.ServingDependents;
import io.kubetune.operator.dependent.TrainerConfigMapDependent;
import io.kubetune.operator.events.EventRecorder;
import io.kubetune.operator.events.Reason;
import io.kubetune.operator.events.StatusEvents;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.TrainingJobPlan;
import io.kubetune.operator.serving.PodVariants;
import io.kubetune.operator.serving.ServingFacts;
import io.kubetune.operator.serving.ServingOutcome;
import io.kubetune.operator.status.FineTuneJobStatusAggregator;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Reconciles a FineTuneJob in a fixed order: observe ({@link FineTuneJobObserver}) -> validate ->
 * resolve the {@link FineTuneJobModel} once -> the trainer ConfigMap (a JOSDK dependent) -> the
 * training Job through its explicit gate ({@link TrainingJobPlan}, {@link TrainingJobGate}) ->
 * status, assembled by its one author ({@link FineTuneJobStatusAggregator}, which folds in what
 * serving decided) -> the serving Deployment and Service (JOSDK dependents, only while serving is
 * on) -> Events (a pure selection, {@link StatusEvents}) -> status write -> reschedule. Children
 * and status are written only when they differ, so an unchanged FineTuneJob costs no write.
 */
@ControllerConfiguration(name = FineTuneJobReconciler.NAME)
public class FineTuneJobReconciler implements Reconciler<FineTuneJob> {
  public static final String NAME = "finetunejob";

  private static final Logger LOG = Logger.getLogger(FineTuneJobReconciler.class);

  /** While a replaced Job is being deleted, look again after this delay. */
  static final Duration REPLACE_POLL = Duration.ofSeconds(5);

  private final OperatorSettings settings;
  private final FineTuneJobMetrics metrics;
  private final TrainerConfigMapDependent configMap;
  private final ServingDependents serving;
  private final TrainingJobGate jobGate;
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
    this.configMap = new TrainerConfigMapDependent(metrics);
    this.serving = new ServingDependents(metrics);
    this.jobGate = new TrainingJobGate(metrics);
  }

  @Override
  public List<EventSource<?, FineTuneJob>> prepareEventSources(
      EventSourceContext<FineTuneJob> context) {
    List<EventSource<?, FineTuneJob>> sources =
        new ArrayList<>(FineTuneJobObserver.informers(context));
    sources.add(configMap.eventSource(context).orElseThrow());
    sources.add(serving.deployment().eventSource(context).orElseThrow());
    sources.add(serving.service().eventSource(context).orElseThrow());
    return sources;
  }

  @Override
  public UpdateControl<FineTuneJob> reconcile(FineTuneJob cr, Context<FineTuneJob> context) {
    Timer.Sample sample = metrics.startReconcile();
    metrics.watch(context.getPrimaryCache());
    FineTuneJobObserver.Observed observed = FineTuneJobObserver.observe(cr, context);
    List<ValidationProblem> problems = FineTuneJobValidator.validate(cr);
    // Resolved once; every builder and the status read it. Children only for a valid spec: an
    // invalid edit must not disturb a running Job.
    FineTuneJobModel model = problems.isEmpty() ? FineTuneJobModel.from(cr, settings) : null;
    Optional<Job> job = observed.job();
    boolean jobIsStale = false;
    if (model != null) {
      Desired.model(context, model);
      TrainingJobPlan.Action action = TrainingJobPlan.decide(model, job.orElse(null));
      jobIsStale =
          action == TrainingJobPlan.Action.REPLACE
              || action == TrainingJobPlan.Action.WAIT_FOR_DELETION;
      if (!jobIsStale) {
        configMap.reconcile(cr, context); // before the Job, which mounts it
      }
      job = jobGate.apply(action, model, job, context);
    }

    FineTuneJobStatus previous = cr.getStatus();
    String log = FineTuneJobObserver.trainerLog(context, previous, observed.pods(), jobIsStale);
    String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    var assessment =
        FineTuneJobStatusAggregator.assess(
            cr,
            model,
            problems,
            new TrainingObservation(job.orElse(null), observed.pods(), jobIsStale, log),
            observed.servingDeployment(),
            servingFacts.duringCanary(context.getClient(), observed.servingDeployment()),
            now);
    FineTuneJobStatus next = assessment.status();
    assessment.serving().ifPresent(outcome -> serving.reconcile(outcome, cr, context));
    StatusEvents.select(previous, next)
        .forEach(
            e ->
                EventRecorder.record(
                    context.getClient(), cr, e.reason(), e.message(), e.occurrence()));

    boolean written = writeStatusIfChanged(cr, context, next);
    metrics.reconciled(sample, written ? "status-updated" : "unchanged");
    // Events from the Job, its pods and the serving objects drive everything else; polled are only
    // a replacement in flight, a running trainer's log, and a rollout's readiness deadline.
    UpdateControl<FineTuneJob> control = UpdateControl.noUpdate();
    Duration servingRequeue = assessment.serving().map(ServingOutcome::requeueAfter).orElse(null);
    if (jobIsStale) {
      control.rescheduleAfter(REPLACE_POLL);
    } else if (next.phase == Phase.Running) {
      control.rescheduleAfter(settings.progressPollInterval());
    } else if (servingRequeue != null) {
      control.rescheduleAfter(servingRequeue);
    }
    return control;
  }

  @Override
  public ErrorStatusUpdateControl<FineTuneJob> updateErrorStatus(
      FineTuneJob cr, Context<FineTuneJob> context, Exception e) {
    metrics.reconciled(metrics.startReconcile(), "error");
    var metadata = cr.getMetadata();
    LOG.warnf(e, "reconcile of %s/%s failed", metadata.getNamespace(), metadata.getName());
    // Never leave the status empty: say what failed, where a user looks (status and Events).
    // JOSDK still retries with backoff; the next successful reconcile clears the condition.
    try {
      String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
      FineTuneJobStatus next =
          ReconcileErrorStatus.of(cr.getStatus(), e, metadata.getGeneration(), now);
      Reason reason =
          ReconcileErrorStatus.isBadInput(e) ? Reason.InvalidSpec : Reason.ReconcileError;
      String occurrence = metadata.getGeneration() + "|" + next.message;
      EventRecorder.record(context.getClient(), cr, reason, next.message, occurrence);
      writeStatusIfChanged(cr, context, next);
    } catch (RuntimeException statusFailed) {
      LOG.warnf(
          statusFailed,
          "could not write the error status of %s/%s",
          metadata.getNamespace(),
          metadata.getName());
    }
    return ErrorStatusUpdateControl.noStatusUpdate();
  }

  /**
   * Writes {@code next} when it differs from the cached status: a full status update with
   * optimistic locking, cached for the next reconcile. A JSON patch against a stale cached copy
   * (UpdateControl.patchStatus without SSA) can apply list additions twice when an earlier write
   * has not reached the informer yet; on a conflict JOSDK re-applies this to the fresh resource.
   */
  private static boolean writeStatusIfChanged(
      FineTuneJob cr, Context<FineTuneJob> context, FineTuneJobStatus next) {
    if (cr.getStatus() != null && Json.canonical(cr.getStatus()).equals(Json.canonical(next))) {
      return false;
    }
    PrimaryUpdateAndCacheUtils.updateStatusAndCacheResource(
        cr,
        context,
        fresh -> {
          fresh.setStatus(next);
          return fresh;
        });
    return true;
  }
}
