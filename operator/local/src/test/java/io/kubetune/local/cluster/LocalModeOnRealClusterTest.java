package io.kubetune.local.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.ReplicaSet;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.local.ClusterLocalMode;
import io.kubetune.local.KubeTuneLocal;
import io.kubetune.local.LocalKubelet;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.serving.PodVariants;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ./kubetune local --cluster} end to end on the real control plane: the quick-start trains
 * through Kubernetes' own Job controller and the {@code LocalKubelet} (bind, local process, pod
 * status, logs served to the API server), the operator reads progress from the pod log through the
 * API server, and the adapter is served through Kubernetes' own Deployment and ReplicaSet
 * controllers, the pod reached at its own loopback pod IP on port 8000.
 */
class LocalModeOnRealClusterTest {
  private static final String NODE = "kubetune-local-test";

  @TempDir Path state;

  @Test
  void quickstartTrainsToCompleteAndServesThroughTheRealControllers() throws Exception {
    KubernetesClient admin = RealCluster.admin();
    ControlPlane controlPlane = RealCluster.controlPlane();
    String namespace = RealCluster.restrictedNamespace("local");
    ObjectMapper yaml = RealCluster.YAML;
    ObjectNode doc =
        (ObjectNode) yaml.readTree(RealCluster.ROOT.resolve("examples/quickstart.yaml").toFile());
    ((ObjectNode) doc.path("metadata")).put("namespace", namespace);
    Path file = state.resolve("quickstart.yaml");
    yaml.writeValue(file.toFile(), doc);

    ByteArrayOutputStream log = new ByteArrayOutputStream();
    AtomicReference<String> podLog = new AtomicReference<>();
    AtomicReference<List<Pod>> servingPods = new AtomicReference<>();
    AtomicReference<Deployment> servingDeployment = new AtomicReference<>();
    AtomicReference<List<VariantsReport>> variants = new AtomicReference<>();
    AtomicReference<Set<String>> rolloutPeak = new AtomicReference<>();
    Instant begin = Instant.now();
    // 60 steps: the quick-start's quality gate passes, so the adapter is served (as in
    // LocalModeEndToEndTest on the mock).
    KubeTuneLocal.Result result =
        ClusterLocalMode.run(
            new KubeTuneLocal.Options(file, 60, false, RealCluster.ROOT, state.resolve("state")),
            controlPlane,
            NODE,
            namespace::equals,
            null,
            new PrintStream(log, true, StandardCharsets.UTF_8),
            false,
            done -> {
              podLog.set(trainingPodLog(admin, namespace, done));
              servingDeployment.set(
                  admin
                      .apps()
                      .deployments()
                      .inNamespace(namespace)
                      .withName(Names.servingDeployment(done))
                      .get());
              // The operator's ServingFacts for clusters reaches the pod at its own pod IP.
              variants.set(new PodVariants().variants(admin, servingDeployment.get()));
              rolloutPeak.set(restartRollout(admin, namespace, servingDeployment.get()));
              servingPods.set(
                  admin
                      .pods()
                      .inNamespace(namespace)
                      .withLabels(Labels.servingSelector(done))
                      .list()
                      .getItems());
            });
    String output = log.toString(StandardCharsets.UTF_8);
    System.out.println(output);
    System.out.printf(
        "local mode on the real control plane: %d s to Serving%n",
        Duration.between(begin, Instant.now()).toSeconds());

    assertThat(result.exitCode()).as(output).isZero();
    FineTuneJob done = result.finalState();
    assertThat(done.getStatus().phase).as(output).isEqualTo(Phase.Serving);
    assertThat(condition(done.getStatus().conditions, "Complete").getStatus()).isEqualTo("True");
    // Progress came from the trainer's log, read by the operator through the API server from
    // the kubelet's endpoint.
    assertThat(done.getStatus().progress.summary).isEqualTo("60/60 (100%)");
    assertThat(done.getStatus().latestCheckpoint.uri)
        .isEqualTo("pvc://local-scratch/quickstart/step-000000060/");

    // Kubernetes' Job controller ran the Job: one succeeded pod, on this node, bound by the agent.
    Job job =
        admin.batch().v1().jobs().inNamespace(namespace).withName(Names.trainingJob(done)).get();
    assertThat(job.getStatus().getSucceeded()).isEqualTo(1);
    assertThat(job.getStatus().getConditions())
        .anyMatch(c -> c.getType().equals("Complete") && c.getStatus().equals("True"));
    List<Pod> trainingPods =
        admin
            .pods()
            .inNamespace(namespace)
            .withLabel("job-name", job.getMetadata().getName())
            .list()
            .getItems();
    assertThat(trainingPods).hasSize(1);
    Pod trainingPod = trainingPods.get(0);
    assertThat(trainingPod.getSpec().getNodeName()).isEqualTo(NODE);
    assertThat(trainingPod.getStatus().getPhase()).isEqualTo("Succeeded");
    assertThat(
            trainingPod
                .getStatus()
                .getContainerStatuses()
                .get(0)
                .getState()
                .getTerminated()
                .getExitCode())
        .isZero();

    // The pod's log through the API server (pods/log -> the kubelet's /containerLogs), with the
    // container's mount paths, as kubectl logs shows it.
    assertThat(podLog.get().lines().map(TrainerEvent::parse))
        .anyMatch(event -> event.isPresent() && event.get() instanceof TrainerEvent.Done);
    assertThat(podLog.get()).doesNotContain(state.toString());

    // The serving Deployment rolled out through the Deployment and ReplicaSet controllers.
    Deployment serving = servingDeployment.get();
    assertThat(serving.getStatus().getReadyReplicas()).isEqualTo(1);
    List<ReplicaSet> replicaSets =
        admin.apps().replicaSets().inNamespace(namespace).list().getItems();
    assertThat(replicaSets)
        .anyMatch(
            rs -> rs.getMetadata().getOwnerReferences().get(0).getKind().equals("Deployment"));
    // The example request went to the serving pod's own address, port 8000.
    JsonNode answer = new ObjectMapper().readTree(result.exampleResponse());
    assertThat(answer.at("/data/0/label").asText())
        .isIn("account", "billing", "bug", "feature_request", "shipping");
    assertThat(output).containsPattern("curl -s http://127\\.0\\.\\d+\\.\\d+:8000/v1/classify");
    assertThat(variants.get()).hasSize(1);
    assertThat(variants.get().get(0).data)
        .anyMatch(
            v ->
                "quickstart".equals(v.model)
                    && done.getStatus().serving.adapterDigest.equals(v.sha256));
    // A restarted rollout ran two serving pods at once (maxSurge 1, maxUnavailable 0), each on
    // port 8000 of its own address.
    assertThat(rolloutPeak.get()).hasSize(2);
    // While serving, the pod was Ready with its own loopback address and ran on this node.
    assertThat(servingPods.get()).hasSize(1);
    Pod servingPod = servingPods.get().get(0);
    assertThat(servingPod.getSpec().getNodeName()).isEqualTo(NODE);
    assertThat(servingPod.getStatus().getPodIP()).startsWith("127.0.").isNotEqualTo("127.0.0.1");
    assertThat(servingPod.getStatus().getConditions())
        .anyMatch(c -> c.getType().equals("Ready") && c.getStatus().equals("True"));
  }

  /**
   * Suspending a FineTuneJob: the operator suspends the Job, Kubernetes' Job controller deletes the
   * running pod, and the agent honours the deletion: SIGTERM (the trainer checkpoints and exits
   * with PREEMPTED), the terminal status with that exit code, then the final delete.
   */
  @Test
  void suspendDeletesTheRunningPodGracefully() throws Exception {
    KubernetesClient admin = RealCluster.admin();
    ControlPlane controlPlane = RealCluster.controlPlane();
    String namespace = RealCluster.restrictedNamespace("suspend");
    FineTuneJob cr =
        RealCluster.YAML.readValue(
            RealCluster.ROOT.resolve("examples/quickstart.yaml").toFile(), FineTuneJob.class);
    cr.getMetadata().setNamespace(namespace);
    cr.getSpec().hyperparameters.maxSteps = 100_000; // runs until suspended
    cr.getSpec().serving = null;
    Path local = state.resolve("suspend");
    List<Pod> terminatedWhileDeleting = new CopyOnWriteArrayList<>();
    try (KubernetesClient operatorClient =
            RealClusterSetup.operatorClient(controlPlane, "kubetune-operator-suspend-test");
        LocalKubelet kubelet =
            new LocalKubelet(
                admin,
                controlPlane.kubeletServerTls(),
                NODE,
                namespace::equals,
                local,
                KubeTuneLocal.claimFolders(RealCluster.ROOT),
                RealCluster.ROOT.resolve("trainer-image/bin/trainer"),
                (pod, event) -> {});
        var watch =
            admin
                .pods()
                .inNamespace(namespace)
                .watch(
                    new Watcher<Pod>() {
                      @Override
                      public void eventReceived(Action action, Pod pod) {
                        if (pod.getMetadata().getDeletionTimestamp() != null
                            && pod.getStatus().getContainerStatuses() != null
                            && !pod.getStatus().getContainerStatuses().isEmpty()
                            && pod.getStatus()
                                    .getContainerStatuses()
                                    .get(0)
                                    .getState()
                                    .getTerminated()
                                != null) {
                          terminatedWhileDeleting.add(pod);
                        }
                      }

                      @Override
                      public void onClose(WatcherException cause) {}
                    })) {
      Operator operator =
          RealClusterSetup.startOperator(
              operatorClient,
              OperatorSettings.defaults().withProgressPollInterval(Duration.ofMillis(500)),
              new SimpleMeterRegistry());
      try {
        kubelet.start();
        FineTuneJob created = admin.resource(cr).create();
        var resource =
            admin
                .resources(FineTuneJob.class)
                .inNamespace(namespace)
                .withName(created.getMetadata().getName());
        // Training runs: progress from the pod log (through the API server and the agent).
        await()
            .atMost(Duration.ofSeconds(120))
            .until(
                () -> {
                  FineTuneJob current = resource.get();
                  return current.getStatus() != null
                      && current.getStatus().progress != null
                      && current.getStatus().progress.step != null
                      && current.getStatus().progress.step > 0;
                });
        resource.edit(
            ftj -> {
              ftj.getSpec().suspend = true;
              return ftj;
            });
        await()
            .atMost(Duration.ofSeconds(90))
            .until(
                () ->
                    admin.pods().inNamespace(namespace).list().getItems().isEmpty()
                        && resource.get().getStatus().phase == Phase.Suspended);
        // The pod's folder (its emptyDir volumes, e.g. the extracted native libraries) goes with
        // it.
        Path podDirs = local.resolve("pods").resolve(namespace);
        await()
            .atMost(Duration.ofSeconds(30))
            .until(
                () -> {
                  try (var dirs = Files.list(podDirs)) {
                    return dirs.findAny().isEmpty();
                  }
                });
      } finally {
        operator.stop();
      }
    }
    assertThat(terminatedWhileDeleting).isNotEmpty();
    assertThat(
            terminatedWhileDeleting
                .get(0)
                .getStatus()
                .getContainerStatuses()
                .get(0)
                .getState()
                .getTerminated()
                .getExitCode())
        .isEqualTo(TrainerExitCodes.PREEMPTED);
    // The trainer checkpointed on SIGTERM.
    try (var steps = Files.list(local.resolve("pvc/local-scratch/quickstart"))) {
      assertThat(steps.map(p -> p.getFileName().toString())).anyMatch(n -> n.startsWith("step-"));
    }
  }

  /**
   * {@code kubectl rollout restart} of the serving Deployment, with the operator still running: the
   * Deployment controller surges a new pod next to the old one, the agent runs both and reports the
   * new one Ready, and the old one is deleted (the agent stops it gracefully). Returns the pod IPs
   * of the most serving pods seen running at once.
   */
  private static Set<String> restartRollout(
      KubernetesClient admin, String namespace, Deployment deployment) {
    var pods =
        admin
            .pods()
            .inNamespace(namespace)
            .withLabels(deployment.getSpec().getSelector().getMatchLabels());
    Set<String> before =
        pods.list().getItems().stream()
            .map(p -> p.getMetadata().getName())
            .collect(Collectors.toSet());
    admin
        .apps()
        .deployments()
        .inNamespace(namespace)
        .withName(deployment.getMetadata().getName())
        .rolling()
        .restart();
    AtomicReference<Set<String>> peak = new AtomicReference<>(Set.of());
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              List<Pod> now = pods.list().getItems();
              Set<String> running =
                  now.stream()
                      .filter(p -> "Running".equals(p.getStatus().getPhase()))
                      .map(p -> p.getStatus().getPodIP())
                      .collect(Collectors.toSet());
              if (running.size() > peak.get().size()) {
                peak.set(running);
              }
              return now.size() == 1
                  && !before.contains(now.get(0).getMetadata().getName())
                  && now.get(0).getStatus().getConditions().stream()
                      .anyMatch(c -> c.getType().equals("Ready") && c.getStatus().equals("True"));
            });
    return peak.get();
  }

  private static String trainingPodLog(KubernetesClient admin, String namespace, FineTuneJob done) {
    Pod pod =
        admin
            .pods()
            .inNamespace(namespace)
            .withLabel("job-name", Names.trainingJob(done))
            .list()
            .getItems()
            .get(0);
    return admin
        .pods()
        .inNamespace(namespace)
        .withName(pod.getMetadata().getName())
        .tailingLines(50)
        .getLog();
  }

  private static Condition condition(List<Condition> conditions, String type) {
    return conditions.stream().filter(c -> c.getType().equals(type)).findFirst().orElseThrow();
  }
}
