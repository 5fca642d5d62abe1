package io.kubetune.operator.status;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.trainer.TrainerTermination;
import io.kubetune.api.v1alpha1.AdapterStatus;
import io.kubetune.api.v1alpha1.CheckpointRecord;
import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.serving.ServingOutcome;
import io.kubetune.operator.serving.ServingRollout;
import io.kubetune.operator.support.Json;
import io.kubetune.operator.validation.ValidationProblem;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * The one author of the FineTuneJob status. From what was observed (validation result, the training
 * Job and its pods, the trainer's log tail, the serving Deployment) it assembles the status: the
 * training outcome ({@link TrainingOutcome}, from {@link PodFacts}), progress and the checkpoint
 * ledger from the parsed log, the exported adapter, the quality gate, and then folds in the {@link
 * ServingOutcome} that {@link ServingRollout} decided. Pure: no client, no clock (the caller passes
 * {@code now}).
 */
public final class FineTuneJobStatusAggregator {

  static final int MAX_MESSAGE = 1024;

  /**
   * The status to write and the serving decision the children must follow.
   *
   * @param status the new status (a copy; the custom resource is not modified)
   * @param serving what serving decided; empty when the spec is invalid (serving left alone)
   */
  public record Assessment(FineTuneJobStatus status, Optional<ServingOutcome> serving) {}

  private FineTuneJobStatusAggregator() {}

  /**
   * Assembles the status of one reconcile.
   *
   * @param model the FineTuneJob resolved once for this reconcile; null when the spec is invalid
   * @param servingDeployment the observed serving Deployment, or null
   */
  public static Assessment assess(
      FineTuneJob cr,
      FineTuneJobModel model,
      List<ValidationProblem> problems,
      TrainingObservation observed,
      Deployment servingDeployment,
      String now) {
    return assess(cr, model, problems, observed, servingDeployment, List.of(), now);
  }

  /**
   * Assembles the status of one reconcile, with what the serving pods report about their variants
   * ({@code GET /v1/variants}) while a canary is served.
   */
  public static Assessment assess(
      FineTuneJob cr,
      FineTuneJobModel model,
      List<ValidationProblem> problems,
      TrainingObservation observed,
      Deployment servingDeployment,
      List<VariantsReport> variants,
      String now) {
    FineTuneJobStatus status = training(cr, model, problems, observed, now);
    if (model == null) {
      return new Assessment(status, Optional.empty());
    }
    ServingOutcome serving =
        ServingRollout.decide(model, status, servingDeployment, variants, Instant.parse(now));
    foldServing(status, serving, cr.getMetadata().getGeneration(), now);
    return new Assessment(status, Optional.of(serving));
  }

  /**
   * The status as training alone makes it (everything but serving): validation, phase and its
   * conditions, progress, checkpoints, the adapter and the Promoted gate.
   */
  static FineTuneJobStatus training(
      FineTuneJob cr,
      FineTuneJobModel model,
      List<ValidationProblem> problems,
      TrainingObservation observed,
      String now) {
    boolean valid = problems.isEmpty();
    if (valid && model == null) {
      throw new IllegalArgumentException("a valid FineTuneJob needs its resolved model");
    }
    FineTuneJobStatus previous = cr.getStatus() != null ? cr.getStatus() : new FineTuneJobStatus();
    FineTuneJobStatus status = Json.copy(previous, FineTuneJobStatus.class);
    Long generation = cr.getMetadata().getGeneration();
    status.observedGeneration = generation;

    String revision = valid ? model.trainingRevision() : previous.trainingRevision;
    if (valid && !Objects.equals(previous.trainingRevision, revision)) {
      startNewRun(status, revision);
    }
    if (valid) {
      status.trainingFields = model.trainingFields();
      status.conditions =
          Conditions.set(
              status.conditions,
              Conditions.VALIDATED,
              true,
              "SpecValid",
              "the spec is valid",
              generation,
              now);
    } else {
      status.conditions =
          Conditions.set(
              status.conditions,
              Conditions.VALIDATED,
              false,
              "InvalidSpec",
              TrainingOutcome.describe(problems),
              generation,
              now);
    }

    // This reconcile got here: an earlier one's exception is over.
    status.conditions = Conditions.remove(status.conditions, Conditions.RECONCILE_ERROR);

    TrainingOutcome outcome = TrainingOutcome.decide(cr, problems, observed, previous, revision);
    status.phase = outcome.phase();
    status.message = truncate(outcome.message());
    Job job = observed.job();
    if (job != null && !observed.jobIsStale()) {
      status.jobName = job.getMetadata().getName();
      if (job.getStatus() != null) {
        status.startTime =
            Optional.ofNullable(job.getStatus().getStartTime()).orElse(status.startTime);
        if (outcome.phase().isTerminal()) {
          status.completionTime =
              Optional.ofNullable(job.getStatus().getCompletionTime()).orElse(now);
        }
      }
      // A pod we have not seen before is a new attempt, even if the Job does not count it
      // (suspended or preempted pods are not failures).
      Optional<Pod> newest = PodFacts.newestPod(observed.pods());
      int previousAttempts = Objects.requireNonNullElse(status.attempts, 0);
      boolean newPod =
          newest.isPresent() && !newest.get().getMetadata().getName().equals(status.podName);
      status.attempts = Math.max(previousAttempts + (newPod ? 1 : 0), PodFacts.attempts(observed));
      newest.ifPresent(p -> status.podName = p.getMetadata().getName());
      // The log tail is parsed once here; every reader below takes the events.
      List<TrainerEvent> events = TrainerEvent.parseLog(observed.trainerLog());
      status.progress = TrainerProgress.from(events, status.progress, now);
      recordCheckpoints(cr, model, status, events, now);
    }
    if (outcome.phase().isTerminal() && status.completionTime == null && job == null) {
      status.completionTime = now;
    }
    if (outcome.phase() == Phase.Succeeded && job != null && !observed.jobIsStale()) {
      recordAdapter(model, status, observed.pods());
    }
    ServingSpec serving =
        model != null
            ? model.serving()
            : cr.getSpec().serving != null && Boolean.TRUE.equals(cr.getSpec().serving.enabled)
                ? cr.getSpec().serving
                : null;
    applyPhaseConditions(serving, status, outcome, generation, now);
    return status;
  }

  /**
   * Folds what serving decided into the status: status.serving, the Serving and Ready conditions,
   * and phase Serving while a model is served after a successful run.
   */
  public static void foldServing(
      FineTuneJobStatus status, ServingOutcome serving, Long generation, String now) {
    status.serving = serving.serving();
    ServingOutcome.Verdict servingCondition = serving.servingCondition();
    if (servingCondition == null) {
      status.conditions = Conditions.remove(status.conditions, Conditions.SERVING);
    } else {
      status.conditions =
          Conditions.set(
              status.conditions,
              Conditions.SERVING,
              servingCondition.value(),
              servingCondition.reason(),
              servingCondition.message(),
              generation,
              now);
    }
    ServingOutcome.Verdict ready = serving.ready();
    if (ready != null) {
      status.conditions =
          Conditions.set(
              status.conditions,
              Conditions.READY,
              ready.value(),
              ready.reason(),
              ready.message(),
              generation,
              now);
    }
    // Phase Serving stands for "this run succeeded and a model is served". While a new run is
    // pending or training, the previous adapter keeps serving but the phase is the run's: a
    // terminal Serving phase would read as "this revision is finished" and no Job would start.
    if (serving.servingMessage() != null && status.phase == Phase.Succeeded) {
      status.phase = Phase.Serving;
      status.message = serving.servingMessage();
    }
  }

  /**
   * Merges the checkpoints the log tail reports into the ledger, and the checkpoints it rejected or
   * failed to write into {@code checkpointWarnings}. Nothing new in the log leaves both exactly as
   * they were, so an unchanged resync writes nothing.
   */
  private static void recordCheckpoints(
      FineTuneJob cr,
      FineTuneJobModel model,
      FineTuneJobStatus status,
      List<TrainerEvent> events,
      String now) {
    // An invalid edit does not stop a running trainer: its log is still read, with the URIs and
    // metric of the spec as it stands (the training fields cannot have changed without a new
    // revision, which the operator refuses while the spec is invalid).
    UnaryOperator<String> uris =
        model != null
            ? model.userCheckpointUris()
            : FineTuneJobModel.userUris(
                cr.getSpec().checkpoints == null ? null : cr.getSpec().checkpoints.uri);
    EvalMetric metric =
        model != null ? model.evaluationMetric() : FineTuneJobModel.evaluationMetric(cr.getSpec());
    List<CheckpointRecord> seen = CheckpointLedger.fromLog(events, uris, now);
    Optional<CheckpointLedger.Rejection> rejection = CheckpointLedger.rejectionAtResume(events);
    if (!seen.isEmpty() || rejection.isPresent()) {
      CheckpointLedger.merge(CheckpointLedger.Ledger.of(status), rejection, seen, metric)
          .writeTo(status);
    }
    List<CheckpointWarning> warnings = CheckpointWarnings.fromLog(events, uris, now);
    if (!warnings.isEmpty()) {
      status.checkpointWarnings = CheckpointWarnings.merge(status.checkpointWarnings, warnings);
    }
  }

  /**
   * The exported result: where it is (checkpoints.uri + {@code final/<trainingRevision>/}, the
   * run's own folder, as the user wrote it) and what the trainer reported in its termination
   * message (format, digest, base and tuned metrics). Kept when the pods are gone. With an invalid
   * spec the URI recorded for this run is kept.
   */
  private static void recordAdapter(
      FineTuneJobModel model, FineTuneJobStatus status, List<Pod> pods) {
    Optional<TrainerTermination> report = PodFacts.successReport(pods);
    if (report.isEmpty() && status.adapter != null) {
      return;
    }
    String uri =
        model != null ? model.adapterUri() : status.adapter == null ? null : status.adapter.uri;
    if (uri == null) {
      return;
    }
    AdapterStatus adapter = new AdapterStatus();
    adapter.uri = uri;
    report.ifPresent(
        r -> {
          adapter.format = r.format;
          adapter.digest = r.digest;
          adapter.baseMetrics = r.baseMetrics;
          adapter.tunedMetrics = r.tunedMetrics;
        });
    status.adapter = adapter;
  }

  /** A new training revision: forget everything that described the previous run. */
  private static void startNewRun(FineTuneJobStatus status, String revision) {
    status.trainingRevision = revision;
    status.startTime = null;
    status.completionTime = null;
    status.attempts = null;
    status.podName = null;
    status.jobName = null;
    status.progress = null;
    status.adapter = null;
    status.checkpoints = null;
    status.latestCheckpoint = null;
    status.bestCheckpoint = null;
    status.checkpointWarnings = null;
  }

  /**
   * Running, Complete and Failed are True exactly in their phase (with the outcome's reason and
   * message) and False otherwise (with the phase as reason). Ready means "the FineTuneJob reached
   * its goal": trained, and served if serving was requested.
   */
  private static void applyPhaseConditions(
      ServingSpec serving,
      FineTuneJobStatus status,
      TrainingOutcome outcome,
      Long generation,
      String now) {
    Phase phase = outcome.phase();
    ConditionWriter write =
        (type, value, reason, message) ->
            status.conditions =
                Conditions.set(status.conditions, type, value, reason, message, generation, now);
    writePhaseCondition(write, Conditions.RUNNING, Phase.Running, outcome, "no trainer is running");
    writePhaseCondition(
        write,
        Conditions.COMPLETE,
        Phase.Succeeded,
        outcome,
        "training has not finished successfully");
    writePhaseCondition(write, Conditions.FAILED, Phase.Failed, outcome, "training has not failed");

    if (serving == null) {
      status.conditions.removeIf(c -> Conditions.PROMOTED.equals(c.getType()));
      if (phase == Phase.Succeeded) {
        write.set(Conditions.READY, true, "TrainingSucceeded", "the tuned model is available");
      } else {
        write.set(
            Conditions.READY, false, phase.name(), "the FineTuneJob has not reached its goal");
      }
      return;
    }
    if (phase != Phase.Succeeded) {
      write.set(Conditions.PROMOTED, false, phase.name(), "training has not succeeded");
      write.set(Conditions.READY, false, phase.name(), "the FineTuneJob has not reached its goal");
      return;
    }
    AdapterStatus adapter = status.adapter;
    QualityGate.Decision gate =
        QualityGate.evaluate(
            serving.gate,
            adapter == null ? null : adapter.baseMetrics,
            adapter == null ? null : adapter.tunedMetrics);
    write.set(Conditions.PROMOTED, gate.passed(), gate.reason(), gate.message());
    // Serving and Ready are decided by ServingRollout, which sees the serving Deployment.
  }

  private interface ConditionWriter {
    void set(String type, boolean value, String reason, String message);
  }

  private static void writePhaseCondition(
      ConditionWriter write,
      String type,
      Phase truePhase,
      TrainingOutcome outcome,
      String otherwise) {
    if (outcome.phase() == truePhase) {
      write.set(type, true, outcome.reason(), outcome.message());
    } else {
      write.set(type, false, outcome.phase().name(), otherwise);
    }
  }

  static String truncate(String message) {
    if (message == null || message.length() <= MAX_MESSAGE) {
      return message;
    }
    return message.substring(0, MAX_MESSAGE - 3) + "...";
  }
}
