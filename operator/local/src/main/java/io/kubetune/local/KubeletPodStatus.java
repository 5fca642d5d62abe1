package io.kubetune.local;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerState;
import io.fabric8.kubernetes.api.model.ContainerStateBuilder;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The status a kubelet writes for a pod whose one container is in a given state: phase, container
 * status, pod and host IPs, and the conditions (Initialized, PodReadyToStartContainers,
 * ContainersReady, Ready) with their last transition times kept while they do not change, since the
 * ReplicaSet controller counts a pod available from its Ready condition's transition time. A pure
 * function of the pod as stored (its previous status) and what the agent observed.
 */
final class KubeletPodStatus {
  private KubeletPodStatus() {}

  /** What the node agent observed of the pod's container. */
  record Observed(
      ContainerState state, boolean ready, int restarts, String podIp, String hostIp, String now) {}

  /** A waiting container (not started, or restarting after a crash). */
  static ContainerState waiting(String reason, String message) {
    return new ContainerStateBuilder()
        .withNewWaiting()
        .withReason(reason)
        .withMessage(message)
        .endWaiting()
        .build();
  }

  static ContainerState running(String startedAt) {
    return new ContainerStateBuilder()
        .withNewRunning()
        .withStartedAt(startedAt)
        .endRunning()
        .build();
  }

  static ContainerState terminated(
      int exitCode, String message, String startedAt, String finishedAt, String containerId) {
    return new ContainerStateBuilder()
        .withNewTerminated()
        .withExitCode(exitCode)
        .withReason(exitCode == 0 ? "Completed" : exitCode == 137 ? "OOMKilled" : "Error")
        .withMessage(message)
        .withStartedAt(startedAt)
        .withFinishedAt(finishedAt)
        .withContainerID(containerId)
        .endTerminated()
        .build();
  }

  /**
   * The pod's phase: Pending until the container first runs; Running while it runs or waits to
   * restart; Succeeded or Failed once it terminated for good (exit code 0 or not).
   */
  static String phase(Observed observed) {
    ContainerState state = observed.state();
    if (state.getTerminated() != null) {
      return state.getTerminated().getExitCode() == 0 ? "Succeeded" : "Failed";
    }
    if (state.getRunning() != null || observed.restarts() > 0) {
      return "Running";
    }
    return "Pending";
  }

  static PodStatus of(Pod pod, Observed observed) {
    PodStatus previous = pod.getStatus() == null ? new PodStatus() : pod.getStatus();
    Container container = pod.getSpec().getContainers().get(0);
    boolean started = observed.state().getRunning() != null;
    boolean ready = started && observed.ready();
    List<PodCondition> conditions = new ArrayList<>();
    // Conditions the agent does not own (PodScheduled from the binding, DisruptionTarget) stay.
    for (PodCondition c :
        Objects.requireNonNullElse(previous.getConditions(), List.<PodCondition>of())) {
      if (!List.of("Initialized", "PodReadyToStartContainers", "ContainersReady", "Ready")
          .contains(c.getType())) {
        conditions.add(c);
      }
    }
    conditions.add(condition(previous, "PodReadyToStartContainers", true, observed.now()));
    conditions.add(condition(previous, "Initialized", true, observed.now()));
    conditions.add(condition(previous, "ContainersReady", ready, observed.now()));
    conditions.add(condition(previous, "Ready", ready, observed.now()));
    return new PodStatusBuilder()
        .withPhase(phase(observed))
        .withHostIP(observed.hostIp())
        .addNewHostIP()
        .withIp(observed.hostIp())
        .endHostIP()
        .withPodIP(observed.podIp())
        .addNewPodIP()
        .withIp(observed.podIp())
        .endPodIP()
        .withStartTime(previous.getStartTime() != null ? previous.getStartTime() : observed.now())
        .withQosClass(previous.getQosClass())
        .withConditions(conditions)
        .addToContainerStatuses(
            new ContainerStatusBuilder()
                .withName(container.getName())
                .withImage(container.getImage())
                .withImageID("")
                .withReady(ready)
                .withStarted(started)
                .withRestartCount(observed.restarts())
                .withState(observed.state())
                .build())
        .build();
  }

  private static PodCondition condition(
      PodStatus previous, String type, boolean value, String now) {
    String status = value ? "True" : "False";
    String since =
        Objects.requireNonNullElse(previous.getConditions(), List.<PodCondition>of()).stream()
            .filter(c -> type.equals(c.getType()) && status.equals(c.getStatus()))
            .map(PodCondition::getLastTransitionTime)
            .filter(Objects::nonNull)
            .findFirst()
            .orElse(now);
    return new PodConditionBuilder()
        .withType(type)
        .withStatus(status)
        .withLastTransitionTime(since)
        .build();
  }
}
