package io.kubetune.operator.status;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.ContainerState;
import io.fabric8.kubernetes.api.model.ContainerStateTerminated;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.trainer.TrainerTermination;
import io.kubetune.operator.Names;
import io.kubetune.operator.support.Json;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Facts read off the training Job and its pods: the current attempt, why a pod stopped, the
 * trainer's exit and termination report. Pure; no decisions about phase (see {@link
 * TrainingOutcome}) and no status writes (see {@link FineTuneJobStatusAggregator}).
 */
public final class PodFacts {
  private PodFacts() {}

  /** The termination report of a trainer container that exited 0, if one of the pods has it. */
  static Optional<TrainerTermination> successReport(List<Pod> pods) {
    return pods.stream()
        .filter(p -> p.getStatus() != null)
        .flatMap(p -> nullSafe(p.getStatus().getContainerStatuses()).stream())
        .filter(cs -> Names.TRAINER_CONTAINER.equals(cs.getName()))
        .map(ContainerStatus::getState)
        .filter(s -> s != null && s.getTerminated() != null)
        .map(ContainerState::getTerminated)
        .filter(t -> Integer.valueOf(0).equals(t.getExitCode()))
        .findFirst()
        .flatMap(t -> parseTermination(t.getMessage()));
  }

  /**
   * Why a pod stopped without failing the run: evicted or preempted (condition DisruptionTarget) or
   * the trainer's own "preempted" exit after SIGTERM. The Job's podFailurePolicy ignores both.
   */
  public static Optional<String> interruption(Pod pod) {
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

  /**
   * The newest pod, when it failed in a way the Job counts (not preempted or disrupted, which the
   * podFailurePolicy ignores) and the Job's status does not count it yet: the Job controller has
   * not decided about it.
   */
  static Optional<Pod> failedPodNotYetCounted(Job job, List<Pod> pods) {
    Optional<Pod> newest = newestPod(pods);
    if (newest.isEmpty() || !isCountedFailure(newest.get())) {
      return Optional.empty();
    }
    long failedPods = pods.stream().filter(PodFacts::isCountedFailure).count();
    int counted =
        job.getStatus() == null ? 0 : Objects.requireNonNullElse(job.getStatus().getFailed(), 0);
    return counted < failedPods ? newest : Optional.empty();
  }

  private static boolean isCountedFailure(Pod pod) {
    return pod.getStatus() != null
        && "Failed".equals(pod.getStatus().getPhase())
        && interruption(pod).isEmpty();
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

  static <T> List<T> nullSafe(List<T> list) {
    return list == null ? List.of() : list;
  }
}
