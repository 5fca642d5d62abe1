package io.kubetune.operator.reconciler;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.fabric8.kubernetes.api.model.batch.v1.JobConditionBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.JobStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.kubetune.operator.Names;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Plays the Job controller and the kubelet against the mock API server, which has neither: it
 * creates the trainer pod of a Job and moves pod and Job through their states the way Kubernetes
 * would (Flink's TestingFlinkService pattern).
 */
final class FakeKubelet {
  private final KubernetesClient client;
  private final KubernetesMockServer server;
  private final Map<String, StringBuilder> logs = new ConcurrentHashMap<>();

  FakeKubelet(KubernetesClient client, KubernetesMockServer server) {
    this.client = client;
    this.server = server;
  }

  /** The trainer prints a line; the API serves it from pods/log as the kubelet would. */
  void log(Pod pod, String line) {
    logs.computeIfAbsent(
            pod.getMetadata().getName(),
            name -> {
              StringBuilder log = new StringBuilder();
              server
                  .expect()
                  .get()
                  .withPath(
                      "/api/v1/namespaces/"
                          + pod.getMetadata().getNamespace()
                          + "/pods/"
                          + name
                          + "/log?pretty=false&container=trainer&tailLines=200")
                  .andReply(200, request -> log.toString())
                  .always();
              return log;
            })
        .append(line)
        .append('\n');
  }

  Job job(String namespace, String name) {
    return client.batch().v1().jobs().inNamespace(namespace).withName(name).get();
  }

  /** The Job controller starts a pod and the kubelet runs it. */
  Pod startPod(Job job, String suffix) {
    Pod pod =
        new PodBuilder()
            .withNewMetadata()
            .withName(job.getMetadata().getName() + "-" + suffix)
            .withNamespace(job.getMetadata().getNamespace())
            .withLabels(job.getSpec().getTemplate().getMetadata().getLabels())
            .addToLabels("job-name", job.getMetadata().getName())
            .addNewOwnerReference()
            .withApiVersion("batch/v1")
            .withKind("Job")
            .withName(job.getMetadata().getName())
            .withUid(job.getMetadata().getUid())
            .withController(true)
            .endOwnerReference()
            .endMetadata()
            .withSpec(job.getSpec().getTemplate().getSpec())
            .build();
    pod = client.resource(pod).create();
    pod.setStatus(
        new io.fabric8.kubernetes.api.model.PodStatusBuilder()
            .withPhase("Running")
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withReady(true)
            .withNewState()
            .withNewRunning()
            .withStartedAt(now())
            .endRunning()
            .endState()
            .endContainerStatus()
            .build());
    pod = client.resource(pod).updateStatus();
    setJobStatus(job, 1, 0, 0, List.of());
    return pod;
  }

  /** The trainer exits; the pod records how. */
  void terminatePod(Pod pod, int exitCode, String reason, String message) {
    Pod current = client.resource(pod).get();
    current.setStatus(
        new io.fabric8.kubernetes.api.model.PodStatusBuilder()
            .withPhase(exitCode == 0 ? "Succeeded" : "Failed")
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(exitCode)
            .withReason(reason)
            .withMessage(message)
            .withFinishedAt(now())
            .endTerminated()
            .endState()
            .endContainerStatus()
            .build());
    client.resource(current).updateStatus();
  }

  void succeed(Job job, Pod pod) {
    succeed(job, pod, "{\"reason\":\"Completed\",\"message\":\"done\"}");
  }

  void succeed(Job job, Pod pod, String terminationMessage) {
    terminatePod(pod, 0, "Completed", terminationMessage);
    setJobStatus(
        job,
        0,
        1,
        0,
        List.of(new JobConditionBuilder().withType("Complete").withStatus("True").build()));
  }

  void fail(Job job, Pod pod, int exitCode, String terminationMessage) {
    terminatePod(pod, exitCode, "Error", terminationMessage);
    setJobStatus(
        job,
        0,
        0,
        1,
        List.of(
            new JobConditionBuilder()
                .withType("Failed")
                .withStatus("True")
                .withReason("PodFailurePolicy")
                .withMessage("Container trainer failed with exit code " + exitCode)
                .build()));
  }

  /**
   * The scheduler preempts the pod (condition DisruptionTarget) and the trainer, on SIGTERM,
   * commits a checkpoint and exits with 4. The Job's podFailurePolicy ignores such a pod: it is not
   * counted as failed and the Job stays active for a replacement.
   */
  void preempt(Job job, Pod pod) {
    Pod current = client.resource(pod).get();
    current.setStatus(
        new io.fabric8.kubernetes.api.model.PodStatusBuilder()
            .withPhase("Failed")
            .addNewCondition()
            .withType("DisruptionTarget")
            .withStatus("True")
            .withReason("PreemptionByScheduler")
            .withMessage("preempted to make room for a higher-priority pod")
            .endCondition()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(4)
            .withReason("Error")
            .withMessage("{\"reason\":\"Preempted\",\"message\":\"checkpoint committed\"}")
            .withFinishedAt(now())
            .endTerminated()
            .endState()
            .endContainerStatus()
            .build());
    client.resource(current).updateStatus();
    setJobStatus(job, 0, 0, 0, List.of());
  }

  /** The Deployment controller and kubelet bring all serving pods of the current spec up. */
  void markDeploymentReady(String namespace, String name) {
    var deployment = client.apps().deployments().inNamespace(namespace).withName(name).get();
    int replicas = deployment.getSpec().getReplicas();
    deployment.setStatus(
        new io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder()
            .withObservedGeneration(deployment.getMetadata().getGeneration())
            .withReplicas(replicas)
            .withUpdatedReplicas(replicas)
            .withReadyReplicas(replicas)
            .withAvailableReplicas(replicas)
            .build());
    client.resource(deployment).updateStatus();
  }

  /** The Job controller reacts to spec.suspend: true by deleting the Job's pods. */
  void suspend(Job job, Pod pod) {
    client.resource(pod).delete();
    setJobStatus(job, 0, 0, 0, List.of());
  }

  private void setJobStatus(
      Job job, int active, int succeeded, int failed, List<JobCondition> conditions) {
    Job current = job(job.getMetadata().getNamespace(), job.getMetadata().getName());
    JobStatus status = new JobStatus();
    status.setActive(active);
    status.setSucceeded(succeeded);
    status.setFailed(failed);
    status.setStartTime(
        current.getStatus() != null && current.getStatus().getStartTime() != null
            ? current.getStatus().getStartTime()
            : now());
    if (succeeded > 0 || failed > 0) {
      status.setCompletionTime(now());
    }
    status.setConditions(conditions);
    current.setStatus(status);
    client.resource(current).updateStatus();
  }

  private static String now() {
    return Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
  }
}
