package io.kubetune.operator.status;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.ContainerState;
import io.fabric8.kubernetes.api.model.ContainerStateTerminated;
import io.fabric8.kubernetes.api.model.ContainerStateWaiting;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.kubetune.api.StorageUri;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.trainer.TrainerTermination;
import io.kubetune.api.v1alpha1.AdapterStatus;
import io.kubetune.api.v1alpha1.CheckpointRecord;
import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.Json;
import io.kubetune.operator.model.TrainerConfigModel;
import io.kubetune.operator.model.TrainingJobPlan;
import io.kubetune.operator.model.TrainingRevision;
import io.kubetune.operator.validation.ValidationProblem;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;

/**
 * Computes the FineTuneJob status from what was observed: validation result, the training Job and
 * its pods. Pure: no client, no clock (the caller passes {@code now}).
 */
public final class FineTuneJobStatusAggregator {

  static final int MAX_MESSAGE = 1024;

  private FineTuneJobStatusAggregator() {}

  public static FineTuneJobStatus compute(
      FineTuneJob cr, List<ValidationProblem> problems, TrainingObservation observed, String now) {
    FineTuneJobStatus previous = cr.getStatus() != null ? cr.getStatus() : new FineTuneJobStatus();
    FineTuneJobStatus status = Json.copy(previous, FineTuneJobStatus.class);
    Long generation = cr.getMetadata().getGeneration();
    status.observedGeneration = generation;

    String revision = problems.isEmpty() ? TrainingRevision.of(cr) : previous.trainingRevision;
    if (problems.isEmpty() && !Objects.equals(previous.trainingRevision, revision)) {
      startNewRun(status, revision);
    }

    if (problems.isEmpty()) {
      status.trainingFields = TrainingRevision.fieldsOf(cr);
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
              describe(problems),
              generation,
              now);
    }

    // This reconcile got here: an earlier one's exception is over.
    status.conditions = Conditions.remove(status.conditions, Conditions.RECONCILE_ERROR);

    Outcome outcome = outcome(cr, problems, observed, previous, revision);
    status.phase = outcome.phase;
    status.message = truncate(outcome.message);
    Job job = observed.job();
    if (job != null && !observed.jobIsStale()) {
      status.jobName = job.getMetadata().getName();
      if (job.getStatus() != null) {
        status.startTime =
            Optional.ofNullable(job.getStatus().getStartTime()).orElse(status.startTime);
        if (outcome.phase.isTerminal()) {
          status.completionTime =
              Optional.ofNullable(job.getStatus().getCompletionTime()).orElse(now);
        }
      }
      // A pod we have not seen before is a new attempt, even if the Job does not count it
      // (suspended or preempted pods are not failures).
      Optional<Pod> newest = newestPod(observed.pods());
      int previousAttempts = Objects.requireNonNullElse(status.attempts, 0);
      boolean newPod =
          newest.isPresent() && !newest.get().getMetadata().getName().equals(status.podName);
      status.attempts = Math.max(previousAttempts + (newPod ? 1 : 0), attempts(observed));
      newest.ifPresent(p -> status.podName = p.getMetadata().getName());
      // The log tail is parsed once here; every reader below takes the events.
      List<TrainerEvent> events = TrainerEvent.parseLog(observed.trainerLog());
      status.progress = TrainerProgress.from(events, status.progress, now);
      recordCheckpoints(cr, status, events, now);
    }
    if (outcome.phase.isTerminal() && status.completionTime == null && job == null) {
      status.completionTime = now;
    }
    if (outcome.phase == Phase.Succeeded && job != null && !observed.jobIsStale()) {
      recordAdapter(cr, status, observed.pods());
    }
    applyPhaseConditions(cr, status, outcome, generation, now);
    return status;
  }

  /**
   * Merges the checkpoints the log tail reports into the ledger, and the checkpoints it rejected or
   * failed to write into {@code checkpointWarnings}. Nothing new in the log leaves both exactly as
   * they were, so an unchanged resync writes nothing.
   */
  private static void recordCheckpoints(
      FineTuneJob cr, FineTuneJobStatus status, List<TrainerEvent> events, String now) {
    String checkpointsUri = cr.getSpec().checkpoints == null ? null : cr.getSpec().checkpoints.uri;
    UnaryOperator<String> uris = CheckpointLedger.userUris(checkpointsUri);
    List<CheckpointRecord> seen = CheckpointLedger.fromLog(events, uris, now);
    Optional<CheckpointLedger.Rejection> rejection = CheckpointLedger.rejectionAtResume(events);
    if (!seen.isEmpty() || rejection.isPresent()) {
      CheckpointLedger.merge(
              CheckpointLedger.Ledger.of(status),
              rejection,
              seen,
              TrainerConfigModel.evaluationMetric(cr))
          .writeTo(status);
    }
    List<CheckpointWarning> warnings = CheckpointWarnings.fromLog(events, uris, now);
    if (!warnings.isEmpty()) {
      status.checkpointWarnings = CheckpointWarnings.merge(status.checkpointWarnings, warnings);
    }
  }

  /**
   * The exported result: where it is (checkpoints.uri + final/, as the user wrote it) and what the
   * trainer reported in its termination message (format, digest, base and tuned metrics). Kept when
   * the pods are gone.
   */
  private static void recordAdapter(FineTuneJob cr, FineTuneJobStatus status, List<Pod> pods) {
    Optional<TrainerTermination> report =
        pods.stream()
            .filter(p -> p.getStatus() != null)
            .flatMap(p -> nullSafe(p.getStatus().getContainerStatuses()).stream())
            .filter(cs -> Names.TRAINER_CONTAINER.equals(cs.getName()))
            .map(ContainerStatus::getState)
            .filter(s -> s != null && s.getTerminated() != null)
            .map(ContainerState::getTerminated)
            .filter(t -> Integer.valueOf(0).equals(t.getExitCode()))
            .findFirst()
            .flatMap(t -> parseTermination(t.getMessage()));
    if (report.isEmpty() && status.adapter != null) {
      return;
    }
    AdapterStatus adapter = new AdapterStatus();
    adapter.uri = StorageUri.parse(cr.getSpec().checkpoints.uri).finalOutput().toString();
    report.ifPresent(
        r -> {
          adapter.format = r.format;
          adapter.digest = r.digest;
          adapter.baseMetrics = r.baseMetrics;
          adapter.tunedMetrics = r.tunedMetrics;
        });
    status.adapter = adapter;
  }

  static Optional<TrainerTermination> parseTermination(String message) {
    if (message == null || !message.strip().startsWith("{")) {
      return Optional.empty();
    }
    try {
      return Optional.of(Json.mapper().readValue(message, TrainerTermination.class));
    } catch (Exception e) {
      return Optional.empty();
    }
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

  record Outcome(Phase phase, String reason, String message) {}

  static Outcome outcome(
      FineTuneJob cr,
      List<ValidationProblem> problems,
      TrainingObservation observed,
      FineTuneJobStatus previous,
      String revision) {
    Job job = observed.job();
    if (!problems.isEmpty() && (job == null || observed.jobIsStale())) {
      return new Outcome(Phase.Failed, "InvalidSpec", "invalid spec: " + describe(problems));
    }
    if (job == null) {
      if (Objects.equals(previous.trainingRevision, revision)
          && previous.phase != null
          && previous.phase.isTerminal()) {
        // The Job was removed after it finished (ttlSecondsAfterFinished): the run stays done.
        Phase trainingPhase = previous.phase == Phase.Serving ? Phase.Succeeded : previous.phase;
        return new Outcome(trainingPhase, previousReason(previous), previous.message);
      }
      return new Outcome(Phase.Pending, "JobPending", "creating the training Job");
    }
    if (observed.jobIsStale()) {
      boolean sameRun = revision.equals(TrainingJobPlan.revisionOf(job));
      return new Outcome(
          Phase.Pending,
          "ReplacingJob",
          "replacing training Job "
              + job.getMetadata().getName()
              + (sameRun ? " to apply changed spec.resources" : " for a new training revision"));
    }
    Optional<JobCondition> complete = jobCondition(job, "Complete");
    if (complete.isPresent()) {
      return new Outcome(Phase.Succeeded, "TrainingSucceeded", "training finished");
    }
    Optional<JobCondition> failed = jobCondition(job, "Failed");
    if (failed.isPresent()) {
      return failure(failed.get(), observed.pods());
    }
    boolean suspendRequested = Boolean.TRUE.equals(cr.getSpec().suspend);
    Optional<Pod> running =
        observed.pods().stream().filter(FineTuneJobStatusAggregator::isRunning).findFirst();
    if (running.isPresent()) {
      String message = "trainer pod " + running.get().getMetadata().getName() + " is running";
      if (suspendRequested) {
        message += "; suspending: waiting for the trainer to checkpoint and stop";
      }
      return new Outcome(Phase.Running, "TrainerRunning", message);
    }
    if (suspendRequested) {
      return new Outcome(
          Phase.Suspended, "Suspended", "training is suspended; set spec.suspend: false to resume");
    }
    Optional<Pod> newest = newestPod(observed.pods());
    if (newest.isPresent()
        && newest.get().getStatus() != null
        && "Succeeded".equals(newest.get().getStatus().getPhase())) {
      // The Job controller marks the Job complete a moment after its pod succeeded.
      return new Outcome(
          Phase.Running,
          "TrainerFinished",
          "the trainer finished; waiting for the Job to complete");
    }
    return new Outcome(Phase.Queued, "Queued", queuedMessage(job, observed.pods()));
  }

  /** Why no trainer runs yet: the most informative pod waiting reason, if any. */
  static String queuedMessage(Job job, List<Pod> pods) {
    if (Boolean.TRUE.equals(job.getSpec().getSuspend())) {
      return "waiting for admission (the Job is suspended, e.g. by Kueue)";
    }
    Optional<Pod> newest = newestPod(pods);
    Optional<String> interrupted = newest.flatMap(FineTuneJobStatusAggregator::interruption);
    if (interrupted.isPresent()) {
      return "pod "
          + newest.get().getMetadata().getName()
          + " "
          + interrupted.get()
          + "; the next attempt resumes from the latest checkpoint and does not count against"
          + " backoffLimit";
    }
    for (Pod pod : pods) {
      if (pod.getStatus() == null) {
        continue;
      }
      for (ContainerStatus cs : nullSafe(pod.getStatus().getContainerStatuses())) {
        ContainerStateWaiting waiting = cs.getState() == null ? null : cs.getState().getWaiting();
        if (waiting != null
            && waiting.getReason() != null
            && !"ContainerCreating".equals(waiting.getReason())) {
          return "pod "
              + pod.getMetadata().getName()
              + ": "
              + waiting.getReason()
              + (waiting.getMessage() != null ? ": " + waiting.getMessage() : "");
        }
      }
      for (PodCondition c : nullSafe(pod.getStatus().getConditions())) {
        if ("PodScheduled".equals(c.getType()) && "False".equals(c.getStatus())) {
          return "pod "
              + pod.getMetadata().getName()
              + " is not scheduled: "
              + Objects.requireNonNullElse(c.getMessage(), c.getReason());
        }
      }
    }
    return "waiting for the trainer pod to start";
  }

  /**
   * Why a pod stopped without failing the run: evicted or preempted (condition DisruptionTarget) or
   * the trainer's own "preempted" exit after SIGTERM. The Job's podFailurePolicy ignores both.
   */
  static Optional<String> interruption(Pod pod) {
    if (pod.getStatus() == null) {
      return Optional.empty();
    }
    for (PodCondition c : nullSafe(pod.getStatus().getConditions())) {
      if ("DisruptionTarget".equals(c.getType()) && "True".equals(c.getStatus())) {
        return Optional.of(
            "was disrupted ("
                + Objects.requireNonNullElse(c.getReason(), "DisruptionTarget")
                + (c.getMessage() != null ? ": " + c.getMessage() : "")
                + ")");
      }
    }
    return nullSafe(pod.getStatus().getContainerStatuses()).stream()
        .filter(cs -> Names.TRAINER_CONTAINER.equals(cs.getName()))
        .map(ContainerStatus::getState)
        .filter(st -> st != null && st.getTerminated() != null)
        .map(ContainerState::getTerminated)
        .filter(t -> Integer.valueOf(TrainerExitCodes.PREEMPTED).equals(t.getExitCode()))
        .findFirst()
        .map(t -> "was preempted (the trainer committed a checkpoint and exited with code 4)");
  }

  /** Explains a failed Job with the trainer's own termination message where there is one. */
  static Outcome failure(JobCondition failed, List<Pod> pods) {
    Optional<ContainerStateTerminated> last = lastTrainerTermination(pods);
    String reason = Objects.requireNonNullElse(failed.getReason(), "JobFailed");
    String message = Objects.requireNonNullElse(failed.getMessage(), "the training Job failed");
    if (last.isPresent()) {
      ContainerStateTerminated t = last.get();
      String trainerReason = reasonForExit(t);
      if (trainerReason != null) {
        reason = trainerReason;
      }
      String detail = terminationDetail(t);
      message =
          "trainer exited with code "
              + t.getExitCode()
              + (t.getReason() != null && !"Error".equals(t.getReason())
                  ? " (" + t.getReason() + ")"
                  : "")
              + (detail.isEmpty() ? "" : ": " + detail)
              + "; "
              + message;
    }
    return new Outcome(Phase.Failed, reason, message);
  }

  static String reasonForExit(ContainerStateTerminated t) {
    Integer code = t.getExitCode();
    if (code == null) {
      return null;
    }
    if (code == TrainerExitCodes.BAD_INPUT) {
      return "BadInput";
    }
    if (code == TrainerExitCodes.LOSS_NOT_FINITE) {
      return "LossNotFinite";
    }
    if (code == TrainerExitCodes.STORAGE_FULL) {
      return "StorageFull";
    }
    if ("OOMKilled".equals(t.getReason())) {
      return "OOMKilled";
    }
    return null;
  }

  /** The trainer writes a JSON TrainerTermination; fall back to raw text (e.g. log tail). */
  static String terminationDetail(ContainerStateTerminated t) {
    String raw = t.getMessage();
    if (raw == null || raw.isBlank()) {
      return "";
    }
    try {
      JsonNode node = Json.mapper().readTree(raw);
      if (node != null && node.hasNonNull("message")) {
        return node.get("message").asText();
      }
    } catch (Exception notJson) {
      // FallbackToLogsOnError: the message is the log tail, shown as is.
    }
    String trimmed = raw.strip();
    return trimmed.length() > 400 ? "..." + trimmed.substring(trimmed.length() - 400) : trimmed;
  }

  /**
   * The trainer's termination that explains a failed Job: the latest one, leaving out preempted or
   * disrupted pods (the podFailurePolicy ignores them, so they never fail a Job) unless there is
   * nothing else. A preempted attempt that finished in the same second as the failing one must not
   * hide its reason.
   */
  static Optional<ContainerStateTerminated> lastTrainerTermination(List<Pod> pods) {
    List<Pod> counted = pods.stream().filter(p -> interruption(p).isEmpty()).toList();
    return (counted.isEmpty() ? pods : counted)
        .stream()
            .filter(p -> p.getStatus() != null)
            .flatMap(p -> nullSafe(p.getStatus().getContainerStatuses()).stream())
            .filter(cs -> Names.TRAINER_CONTAINER.equals(cs.getName()))
            .map(ContainerStatus::getState)
            .filter(Objects::nonNull)
            .map(ContainerState::getTerminated)
            .filter(Objects::nonNull)
            .max(Comparator.comparing(t -> Objects.requireNonNullElse(t.getFinishedAt(), "")));
  }

  /** Pods of one Job are created one after another; the newest is the current attempt. */
  static Optional<Pod> newestPod(List<Pod> pods) {
    return pods.stream()
        .max(
            Comparator.comparing(
                    (Pod p) ->
                        Objects.requireNonNullElse(p.getMetadata().getCreationTimestamp(), ""))
                .thenComparing(p -> p.getMetadata().getName()));
  }

  /** The pod whose log the operator reads for progress: the newest one. */
  public static Optional<Pod> currentPod(List<Pod> pods) {
    return newestPod(pods);
  }

  public static boolean isRunning(Pod pod) {
    return pod.getStatus() != null
        && "Running".equals(pod.getStatus().getPhase())
        && pod.getMetadata().getDeletionTimestamp() == null;
  }

  static int attempts(TrainingObservation observed) {
    Job job = observed.job();
    int fromJob = 0;
    if (job.getStatus() != null) {
      fromJob =
          Objects.requireNonNullElse(job.getStatus().getActive(), 0)
              + Objects.requireNonNullElse(job.getStatus().getFailed(), 0)
              + Objects.requireNonNullElse(job.getStatus().getSucceeded(), 0);
    }
    return Math.max(fromJob, observed.pods().size());
  }

  static Optional<JobCondition> jobCondition(Job job, String type) {
    if (job.getStatus() == null) {
      return Optional.empty();
    }
    return nullSafe(job.getStatus().getConditions()).stream()
        .filter(c -> type.equals(c.getType()) && "True".equals(c.getStatus()))
        .findFirst();
  }

  /**
   * Running, Complete and Failed are True exactly in their phase (with the outcome's reason and
   * message) and False otherwise (with the phase as reason). Ready means "the FineTuneJob reached
   * its goal": trained, and served if serving was requested.
   */
  private static void applyPhaseConditions(
      FineTuneJob cr, FineTuneJobStatus status, Outcome outcome, Long generation, String now) {
    Phase phase = outcome.phase;
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

    boolean servingRequested =
        cr.getSpec() != null
            && cr.getSpec().serving != null
            && Boolean.TRUE.equals(cr.getSpec().serving.enabled);
    if (!servingRequested) {
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
            cr.getSpec().serving.gate,
            adapter == null ? null : adapter.baseMetrics,
            adapter == null ? null : adapter.tunedMetrics);
    write.set(Conditions.PROMOTED, gate.passed(), gate.reason(), gate.message());
    // Serving and Ready are decided by ServingRollout, which sees the serving Deployment.
  }

  private interface ConditionWriter {
    void set(String type, boolean value, String reason, String message);
  }

  private static void writePhaseCondition(
      ConditionWriter write, String type, Phase truePhase, Outcome outcome, String otherwise) {
    if (outcome.phase == truePhase) {
      write.set(type, true, outcome.reason, outcome.message);
    } else {
      write.set(type, false, outcome.phase.name(), otherwise);
    }
  }

  static String describe(List<ValidationProblem> problems) {
    return problems.stream().map(ValidationProblem::toString).collect(Collectors.joining("; "));
  }

  static String truncate(String message) {
    if (message == null || message.length() <= MAX_MESSAGE) {
      return message;
    }
    return message.substring(0, MAX_MESSAGE - 3) + "...";
  }

  private static <T> List<T> nullSafe(List<T> list) {
    return list == null ? List.of() : list;
  }

  /** The reason a finished run ended with, read back from the previous status. */
  private static String previousReason(FineTuneJobStatus previous) {
    io.fabric8.kubernetes.api.model.Condition failed =
        Conditions.find(previous.conditions, Conditions.FAILED);
    if (previous.phase == Phase.Failed && failed != null && failed.getReason() != null) {
      return failed.getReason();
    }
    return previous.phase == Phase.Failed ? "JobFailed" : "TrainingSucceeded";
  }
}
