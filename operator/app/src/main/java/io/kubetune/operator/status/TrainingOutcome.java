package io.kubetune.operator.status;

import io.fabric8.kubernetes.api.model.ContainerStateTerminated;
import io.fabric8.kubernetes.api.model.ContainerStateWaiting;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.model.TrainingJobPlan;
import io.kubetune.operator.validation.ValidationProblem;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Where the training run stands, decided from the validation result, the Job and its pods: a phase,
 * a CamelCase reason and a message. Pure; the aggregator writes it into status.
 */
record TrainingOutcome(Phase phase, String reason, String message) {

  static TrainingOutcome decide(
      FineTuneJob cr,
      List<ValidationProblem> problems,
      TrainingObservation observed,
      FineTuneJobStatus previous,
      String revision) {
    Job job = observed.job();
    if (!problems.isEmpty() && (job == null || observed.jobIsStale())) {
      return new TrainingOutcome(
          Phase.Failed, "InvalidSpec", "invalid spec: " + describe(problems));
    }
    if (job == null) {
      if (Objects.equals(previous.trainingRevision, revision)
          && previous.phase != null
          && previous.phase.isTerminal()) {
        // The Job was removed after it finished (ttlSecondsAfterFinished): the run stays done.
        Phase trainingPhase = previous.phase == Phase.Serving ? Phase.Succeeded : previous.phase;
        return new TrainingOutcome(trainingPhase, previousReason(previous), previous.message);
      }
      return new TrainingOutcome(Phase.Pending, "JobPending", "creating the training Job");
    }
    if (observed.jobIsStale()) {
      boolean sameRun = revision.equals(TrainingJobPlan.revisionOf(job));
      return new TrainingOutcome(
          Phase.Pending,
          "ReplacingJob",
          "replacing training Job "
              + job.getMetadata().getName()
              + (sameRun ? " to apply changed spec.resources" : " for a new training revision"));
    }
    Optional<JobCondition> complete = PodFacts.jobCondition(job, "Complete");
    if (complete.isPresent()) {
      return new TrainingOutcome(Phase.Succeeded, "TrainingSucceeded", "training finished");
    }
    // FailureTarget: Kubernetes' Job controller (v1.31+) has decided the Job fails and records why
    // before it removes the pods' finalizers; Failed, with the same reason and message, follows
    // once no pod of the Job is left running.
    Optional<JobCondition> failed =
        PodFacts.jobCondition(job, "Failed").or(() -> PodFacts.jobCondition(job, "FailureTarget"));
    if (failed.isPresent()) {
      return failure(failed.get(), observed.pods());
    }
    boolean suspendRequested = Boolean.TRUE.equals(cr.getSpec().suspend);
    Optional<Pod> running = observed.pods().stream().filter(PodFacts::isRunning).findFirst();
    if (running.isPresent()) {
      String message = "trainer pod " + running.get().getMetadata().getName() + " is running";
      if (suspendRequested) {
        message += "; suspending: waiting for the trainer to checkpoint and stop";
      }
      return new TrainingOutcome(Phase.Running, "TrainerRunning", message);
    }
    if (suspendRequested) {
      return new TrainingOutcome(
          Phase.Suspended, "Suspended", "training is suspended; set spec.suspend: false to resume");
    }
    Optional<Pod> newest = PodFacts.newestPod(observed.pods());
    if (newest.isPresent()
        && newest.get().getStatus() != null
        && "Succeeded".equals(newest.get().getStatus().getPhase())) {
      // The Job controller marks the Job complete a moment after its pod succeeded.
      return new TrainingOutcome(
          Phase.Running,
          "TrainerFinished",
          "the trainer finished; waiting for the Job to complete");
    }
    Optional<Pod> uncounted = PodFacts.failedPodNotYetCounted(job, observed.pods());
    if (uncounted.isPresent()) {
      // Likewise the Job controller counts a failed pod, and decides between another attempt and
      // failing the Job, a moment after the pod failed: no detour through Queued meanwhile.
      return new TrainingOutcome(
          Phase.Running,
          "TrainerExited",
          "trainer pod "
              + uncounted.get().getMetadata().getName()
              + " failed; waiting for the Job to retry it or to fail");
    }
    return new TrainingOutcome(Phase.Queued, "Queued", queuedMessage(job, observed.pods()));
  }

  /** Why no trainer runs yet: the most informative pod waiting reason, if any. */
  static String queuedMessage(Job job, List<Pod> pods) {
    if (Boolean.TRUE.equals(job.getSpec().getSuspend())) {
      return "waiting for admission (the Job is suspended, e.g. by Kueue)";
    }
    Optional<Pod> newest = PodFacts.newestPod(pods);
    Optional<String> interrupted = newest.flatMap(PodFacts::interruption);
    if (interrupted.isPresent()) {
      return "pod "
          + newest.get().getMetadata().getName()
          + " "
          + interrupted.get()
          + "; the next attempt resumes from the latest checkpoint and does not count against"
          + " backoffLimit";
    }
    Optional<ContainerStateTerminated> retried =
        newest
            .filter(p -> "Failed".equals(p.getStatus() == null ? null : p.getStatus().getPhase()))
            .flatMap(p -> PodFacts.lastTrainerTermination(List.of(p)));
    if (retried.isPresent()) {
      String detail = PodFacts.terminationDetail(retried.get());
      return "pod "
          + newest.get().getMetadata().getName()
          + " failed (trainer exited with code "
          + retried.get().getExitCode()
          + (detail.isEmpty() ? "" : ": " + detail)
          + "); the Job starts another attempt after its back-off";
    }
    for (Pod pod : pods) {
      if (pod.getStatus() == null) {
        continue;
      }
      for (ContainerStatus cs : PodFacts.nullSafe(pod.getStatus().getContainerStatuses())) {
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
      for (PodCondition c : PodFacts.nullSafe(pod.getStatus().getConditions())) {
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

  /** Explains a failed Job with the trainer's own termination message where there is one. */
  static TrainingOutcome failure(JobCondition failed, List<Pod> pods) {
    Optional<ContainerStateTerminated> last = PodFacts.lastTrainerTermination(pods);
    String reason = Objects.requireNonNullElse(failed.getReason(), "JobFailed");
    String message = Objects.requireNonNullElse(failed.getMessage(), "the training Job failed");
    if (last.isPresent()) {
      ContainerStateTerminated t = last.get();
      String trainerReason = PodFacts.reasonForExit(t);
      if (trainerReason != null) {
        reason = trainerReason;
      }
      String detail = PodFacts.terminationDetail(t);
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
    return new TrainingOutcome(Phase.Failed, reason, message);
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

  static String describe(List<ValidationProblem> problems) {
    return problems.stream().map(ValidationProblem::toString).collect(Collectors.joining("; "));
  }
}
