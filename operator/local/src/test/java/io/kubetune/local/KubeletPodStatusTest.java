package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.PodStatus;
import org.junit.jupiter.api.Test;

class KubeletPodStatusTest {
  private static final String T0 = "2026-01-01T00:00:00Z";
  private static final String T1 = "2026-01-01T00:00:05Z";

  private static Pod pod(PodStatus status) {
    return new PodBuilder()
        .withNewMetadata()
        .withName("p")
        .endMetadata()
        .withNewSpec()
        .addNewContainer()
        .withName("server")
        .withImage("ghcr.io/kubetune/kubetune-trainer:0.1.0")
        .endContainer()
        .endSpec()
        .withStatus(status)
        .build();
  }

  private static KubeletPodStatus.Observed observed(
      io.fabric8.kubernetes.api.model.ContainerState state, boolean ready, String now) {
    return new KubeletPodStatus.Observed(state, ready, 0, "127.0.3.4", "127.0.0.1", now);
  }

  private static PodCondition condition(PodStatus status, String type) {
    return status.getConditions().stream()
        .filter(c -> c.getType().equals(type))
        .findFirst()
        .orElseThrow();
  }

  @Test
  void runningNotYetReadyThenReadyKeepsTransitionTimesOfUnchangedConditions() {
    PodStatus scheduled =
        new io.fabric8.kubernetes.api.model.PodStatusBuilder()
            .addNewCondition()
            .withType("PodScheduled")
            .withStatus("True")
            .withLastTransitionTime(T0)
            .endCondition()
            .build();
    PodStatus starting =
        KubeletPodStatus.of(pod(scheduled), observed(KubeletPodStatus.running(T0), false, T0));
    assertThat(starting.getPhase()).isEqualTo("Running");
    assertThat(starting.getPodIP()).isEqualTo("127.0.3.4");
    assertThat(starting.getHostIP()).isEqualTo("127.0.0.1");
    assertThat(condition(starting, "PodScheduled").getStatus()).isEqualTo("True");
    assertThat(condition(starting, "Ready").getStatus()).isEqualTo("False");
    assertThat(starting.getContainerStatuses().get(0).getStarted()).isTrue();

    PodStatus ready =
        KubeletPodStatus.of(pod(starting), observed(KubeletPodStatus.running(T0), true, T1));
    assertThat(condition(ready, "Ready").getStatus()).isEqualTo("True");
    assertThat(condition(ready, "Ready").getLastTransitionTime()).isEqualTo(T1);
    assertThat(condition(ready, "Initialized").getLastTransitionTime()).isEqualTo(T0);
    assertThat(ready.getContainerStatuses().get(0).getReady()).isTrue();
    assertThat(ready.getStartTime()).isEqualTo(T0);
  }

  @Test
  void phaseFollowsTheContainer() {
    assertThat(
            KubeletPodStatus.phase(
                observed(KubeletPodStatus.waiting("LocalModeUnsupportedImage", "no"), false, T0)))
        .isEqualTo("Pending");
    assertThat(
            KubeletPodStatus.phase(
                new KubeletPodStatus.Observed(
                    KubeletPodStatus.waiting("CrashLoopBackOff", "exit 1"),
                    false,
                    2,
                    "127.0.3.4",
                    "127.0.0.1",
                    T0)))
        .isEqualTo("Running");
    assertThat(
            KubeletPodStatus.phase(
                observed(KubeletPodStatus.terminated(0, null, T0, T1, "local://1"), false, T1)))
        .isEqualTo("Succeeded");
    PodStatus failed =
        KubeletPodStatus.of(
            pod(null),
            observed(KubeletPodStatus.terminated(4, "preempted", T0, T1, "local://1"), true, T1));
    assertThat(failed.getPhase()).isEqualTo("Failed");
    assertThat(condition(failed, "Ready").getStatus()).isEqualTo("False");
    var terminated = failed.getContainerStatuses().get(0).getState().getTerminated();
    assertThat(terminated.getExitCode()).isEqualTo(4);
    assertThat(terminated.getMessage()).isEqualTo("preempted");
    assertThat(terminated.getReason()).isEqualTo("Error");
  }

  @Test
  void refusesWhatItCannotRun() {
    Pod other =
        new PodBuilder()
            .withNewSpec()
            .addNewContainer()
            .withName("c")
            .withImage("nginx:1.27")
            .endContainer()
            .endSpec()
            .build();
    assertThat(LocalKubelet.unsupported(other)).contains("kubetune-trainer").contains("nginx:1.27");
    assertThat(LocalKubelet.unsupported(pod(null))).isNull();
  }
}
