package io.kubetune.local.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.trainer.TrainerTermination;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.status.Conditions;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The reconcile-loop scenarios of the mock-API tests (operator/app, FineTuneJobReconcileLoopTest),
 * here on the real API server with Kubernetes' own Job, Deployment/ReplicaSet, EndpointSlice and
 * garbage-collector controllers. The test plays only the kubelet ({@link ScriptedKubelet}): the Job
 * status, the pods' creation and deletion, podFailurePolicy, backoffLimit, suspend, rollouts and
 * cascading deletion are Kubernetes' own. The operator runs under its ServiceAccount with the
 * shipped ClusterRole and production's write path (server-side apply as operator/app's
 * application.properties sets it: off, see docs/control-plane.md); no request of it may be refused
 * (audit log). Each scenario has its own namespace.
 */
class ReconcileLoopOnRealApiServerTest {
  private static final String USER_AGENT = "kubetune-operator-scenarios";
  private static final Duration CONTROLLERS = Duration.ofSeconds(60);
  // The garbage collector notices a just-installed CRD's resource type at its next discovery
  // sync (every 30 s), so a cascade can take that long when this class runs first.
  private static final Duration GARBAGE_COLLECTION = Duration.ofSeconds(120);

  private static KubernetesClient admin;
  private static KubernetesClient operatorClient;
  private static Operator operator;
  private static ScriptedKubelet kubelet;

  @BeforeAll
  static void start() {
    ControlPlane controlPlane = RealCluster.controlPlane();
    admin = RealCluster.admin();
    kubelet = new ScriptedKubelet(admin);
    operatorClient = RealClusterSetup.operatorClient(controlPlane, USER_AGENT);
    System.out.printf(
        "operator writes with server-side apply: %s (as in production)%n",
        RealClusterSetup.productionUsesServerSideApply());
    operator =
        RealClusterSetup.startOperator(
            operatorClient,
            OperatorSettings.defaults().withProgressPollInterval(Duration.ofSeconds(1)),
            new SimpleMeterRegistry());
  }

  @AfterAll
  static void stop() throws IOException {
    if (operator != null) {
      operator.stop();
    }
    if (operatorClient != null) {
      operatorClient.close();
    }
    if (kubelet != null) {
      kubelet.close();
      assertThat(kubelet.errors()).as("writes the API server refused the kubelet").isEmpty();
    }
    assertThat(RealCluster.forbiddenOperatorRequests(USER_AGENT))
        .as("operator requests refused with 403 (audit log)")
        .isEmpty();
  }

  /**
   * create → the ConfigMap and Job; the Job controller's pod runs → Running; the trainer exits 0
   * with its report → the Job controller completes the Job → Succeeded with the adapter's digest,
   * and {@code kubectl wait --for=condition=Complete} returns.
   */
  @Test
  void createRunAndSucceed() throws Exception {
    String ns = namespace("succeed");
    FineTuneJob cr = create(ns, "tickets", "");
    Job job = awaitJob(cr);
    assertThat(job.getSpec().getPodFailurePolicy()).isNotNull();
    assertThat(admin.configMaps().inNamespace(ns).withName(Names.trainerConfigMap(cr)).get())
        .isNotNull();

    Pod pod = awaitRunningPod(job);
    assertThat(pod.getSpec().getNodeName()).isEqualTo(ScriptedKubelet.NODE);
    FineTuneJobStatus running = awaitStatus(cr, s -> s.phase == Phase.Running);
    assertThat(running.podName).isEqualTo(pod.getMetadata().getName());
    assertThat(running.attempts).isEqualTo(1);
    assertThat(Conditions.isTrue(running.conditions, Conditions.RUNNING)).isTrue();

    kubelet.exit(pod, TrainerExitCodes.SUCCESS, completed("digest-1", 1.6, 0.7));
    awaitJobCondition(job, "Complete");
    FineTuneJobStatus done = awaitStatus(cr, s -> s.phase == Phase.Succeeded);
    assertThat(Conditions.isTrue(done.conditions, Conditions.COMPLETE)).isTrue();
    assertThat(Conditions.isTrue(done.conditions, Conditions.FAILED)).isFalse();
    assertThat(done.adapter.digest).isEqualTo("digest-1");
    assertThat(done.completionTime).isNotNull();
    assertThat(
            kubectl("-n", ns, "wait", "--for=condition=Complete", "ftj/tickets", "--timeout=30s"))
        .contains("condition met");
    // One Event per transition: the pod's success before the Job's Complete is no detour.
    assertThat(awaitEventReasons(cr, "Succeeded"))
        .containsExactlyInAnyOrder("JobCreated", "Queued", "Started", "Succeeded");
  }

  /**
   * Exit code 2 (bad input) matches the podFailurePolicy's FailJob rule: the Job controller fails
   * the Job at the first pod although backoffLimit allows 3 retries, and the FineTuneJob fails with
   * the trainer's own message.
   */
  @Test
  void badInputFailsTheJobAtOnce() throws Exception {
    String ns = namespace("badinput");
    FineTuneJob cr = create(ns, "broken", "");
    Job job = awaitJob(cr);
    Pod pod = awaitRunningPod(job);
    awaitStatus(cr, s -> s.phase == Phase.Running);

    kubelet.exit(
        pod,
        TrainerExitCodes.BAD_INPUT,
        termination("BadInput", "train.jsonl line 3: not valid JSON; fix the line"));
    JobCondition failed = awaitJobCondition(job, "Failed");
    assertThat(failed.getReason()).isEqualTo("PodFailurePolicy");
    FineTuneJobStatus status = awaitStatus(cr, s -> s.phase == Phase.Failed);
    var condition = Conditions.find(status.conditions, Conditions.FAILED);
    assertThat(condition.getStatus()).isEqualTo("True");
    assertThat(condition.getReason()).isEqualTo("BadInput");
    assertThat(status.message)
        .contains("trainer exited with code 2")
        .contains("train.jsonl line 3: not valid JSON; fix the line");
    assertThat(podsOf(job)).as("no retry").hasSize(1);
    assertThat(kubectl("-n", ns, "wait", "--for=condition=Failed", "ftj/broken", "--timeout=30s"))
        .contains("condition met");
    // Between the pod's failure and the Job's Failed condition the run does not flicker back.
    assertThat(awaitEventReasons(cr, "Failed"))
        .containsExactlyInAnyOrder("JobCreated", "Queued", "Started", "Failed");
  }

  /**
   * Exit code 1 (unexpected) matches no rule: the Job controller retries it, after its back-off,
   * until backoffLimit (1 here) is spent, then fails the Job; the FineTuneJob fails with the last
   * trainer's message.
   */
  @Test
  void retryableFailureIsRetriedUpToBackoffLimit() throws Exception {
    String ns = namespace("retry");
    FineTuneJob cr = create(ns, "flaky", "  backoffLimit: 1\n");
    Job job = awaitJob(cr);
    Pod first = awaitRunningPod(job);
    kubelet.exit(
        first,
        TrainerExitCodes.UNEXPECTED_ERROR,
        termination("Unexpected", "storage unavailable: connection refused"));

    Pod second = awaitRunningPod(job);
    assertThat(second.getMetadata().getName()).isNotEqualTo(first.getMetadata().getName());
    FineTuneJobStatus retried =
        awaitStatus(
            cr, s -> s.phase == Phase.Running && second.getMetadata().getName().equals(s.podName));
    assertThat(retried.attempts).isEqualTo(2);
    assertThat(Conditions.isTrue(retried.conditions, Conditions.FAILED)).isFalse();

    kubelet.exit(
        second,
        TrainerExitCodes.UNEXPECTED_ERROR,
        termination("Unexpected", "out of memory while loading the base model"));
    JobCondition failed = awaitJobCondition(job, "Failed");
    assertThat(failed.getReason()).isEqualTo("BackoffLimitExceeded");
    FineTuneJobStatus status = awaitStatus(cr, s -> s.phase == Phase.Failed);
    assertThat(Conditions.find(status.conditions, Conditions.FAILED).getReason())
        .isEqualTo("BackoffLimitExceeded");
    assertThat(status.message)
        .contains("trainer exited with code 1")
        .contains("out of memory while loading the base model");
    assertThat(status.attempts).isEqualTo(2);
  }

  /**
   * A preempted pod (DisruptionTarget, the trainer's exit 4 after its checkpoint) matches the
   * podFailurePolicy's Ignore rules: not counted as failed, the Job controller creates another pod,
   * and the FineTuneJob resumes and can still succeed.
   */
  @Test
  void preemptedPodIsReplacedWithoutCountingAsFailure() throws Exception {
    String ns = namespace("preempt");
    FineTuneJob cr = create(ns, "preempted", "  backoffLimit: 0\n");
    Job job = awaitJob(cr);
    Pod first = awaitRunningPod(job);
    awaitStatus(cr, s -> s.phase == Phase.Running);

    kubelet.disrupt(first);
    // The Job controller replaces the pod only after its pod-failure back-off (10 s, doubling),
    // which it applies to pods the podFailurePolicy ignores too: meanwhile the run is Queued.
    FineTuneJobStatus interrupted =
        awaitStatus(cr, s -> s.phase == Phase.Queued && s.message.contains("disrupted"));
    assertThat(interrupted.message)
        .contains(first.getMetadata().getName())
        .contains("does not count against backoffLimit");
    Pod second = awaitRunningPod(job);
    assertThat(second.getMetadata().getName()).isNotEqualTo(first.getMetadata().getName());
    FineTuneJobStatus resumed =
        awaitStatus(
            cr, s -> s.phase == Phase.Running && second.getMetadata().getName().equals(s.podName));
    assertThat(resumed.attempts).isEqualTo(2);
    assertThat(Conditions.isTrue(resumed.conditions, Conditions.FAILED)).isFalse();
    Job active = job(job);
    assertThat(active.getStatus().getFailed()).as("preemption is not a failure").isIn(null, 0);
    assertThat(active.getStatus().getConditions()).isNullOrEmpty();

    kubelet.exit(second, TrainerExitCodes.SUCCESS, completed("digest-p", 1.6, 0.8));
    awaitStatus(cr, s -> s.phase == Phase.Succeeded);
  }

  /**
   * spec.suspend: the operator suspends the Job, Kubernetes' Job controller deletes its pod (the
   * trainer checkpoints on SIGTERM and exits 4), the FineTuneJob is Suspended; resuming lets the
   * Job controller start a new pod.
   */
  @Test
  void suspendAndResume() throws Exception {
    String ns = namespace("suspend");
    FineTuneJob cr = create(ns, "pausable", "");
    Job job = awaitJob(cr);
    Pod first = awaitRunningPod(job);
    awaitStatus(cr, s -> s.phase == Phase.Running);

    edit(cr, c -> c.getSpec().suspend = true);
    awaitJobCondition(job, "Suspended");
    await()
        .atMost(CONTROLLERS)
        .alias("the suspended Job's pod is gone")
        .until(
            () ->
                admin.pods().inNamespace(ns).withName(first.getMetadata().getName()).get() == null);
    FineTuneJobStatus suspended = awaitStatus(cr, s -> s.phase == Phase.Suspended);
    assertThat(Conditions.isTrue(suspended.conditions, Conditions.FAILED)).isFalse();
    assertThat(job(job).getStatus().getFailed()).as("a suspension is not a failure").isIn(null, 0);

    edit(cr, c -> c.getSpec().suspend = false);
    Pod second = awaitRunningPod(job);
    assertThat(second.getMetadata().getName()).isNotEqualTo(first.getMetadata().getName());
    FineTuneJobStatus resumed =
        awaitStatus(
            cr, s -> s.phase == Phase.Running && second.getMetadata().getName().equals(s.podName));
    assertThat(resumed.attempts).isEqualTo(2);
    assertThat(job(job).getMetadata().getUid()).isEqualTo(job.getMetadata().getUid());
  }

  /**
   * Serving: a promoted adapter gets a Deployment and a Service; Kubernetes' Deployment and
   * ReplicaSet controllers create the pod, the EndpointSlice controller lists it once Ready, and
   * the FineTuneJob is Serving at its endpoint. Then a retrain (restartNonce: the operator replaces
   * the Job) yields a second adapter that passes the gate but whose pods never become ready: after
   * serving.readinessTimeout the operator rolls the Deployment back, the ReplicaSet of the new
   * adapter is scaled down, and the first adapter's pod, never stopped (maxUnavailable 0), keeps
   * serving. A third run whose adapter fails the quality gate leaves the Deployment alone.
   */
  @Test
  void servingRolloutThenRollbackAndAFailedGate() throws Exception {
    String ns = namespace("serve");
    FineTuneJob cr = create(ns, "served", servingSpec("15s"));
    Job job = awaitJob(cr);
    kubelet.exit(awaitRunningPod(job), TrainerExitCodes.SUCCESS, completed("d1", 1.6, 0.7));

    FineTuneJobStatus serving = awaitStatus(cr, s -> s.phase == Phase.Serving);
    assertThat(serving.serving.endpoint).isEqualTo("http://served-serve." + ns + ".svc:8000/v1");
    assertThat(serving.serving.adapterDigest).isEqualTo("d1");
    assertThat(Conditions.isTrue(serving.conditions, Conditions.READY)).isTrue();
    assertThat(admin.services().inNamespace(ns).withName("served-serve").get()).isNotNull();
    List<Pod> servingPods = servingPods(ns, "served");
    assertThat(servingPods).hasSize(1);
    Pod d1Pod = servingPods.get(0);
    assertThat(d1Pod.getMetadata().getOwnerReferences().get(0).getKind()).isEqualTo("ReplicaSet");
    await()
        .atMost(CONTROLLERS)
        .alias("the Service's EndpointSlice lists the ready serving pod")
        .until(() -> readyEndpoints(ns, "served-serve") == 1);

    // Retrain; the new adapter ("d2") passes the gate, but its server never becomes ready.
    kubelet.neverReady("d2");
    edit(cr, c -> c.getSpec().restartNonce = "second-run");
    await()
        .atMost(CONTROLLERS)
        .alias("the replaced training Job")
        .until(
            () -> {
              Job current =
                  admin.batch().v1().jobs().inNamespace(ns).withName("served-train").get();
              return current != null
                  && !current.getMetadata().getUid().equals(job.getMetadata().getUid());
            });
    Job second = admin.batch().v1().jobs().inNamespace(ns).withName("served-train").get();
    kubelet.exit(awaitRunningPod(second), TrainerExitCodes.SUCCESS, completed("d2", 1.6, 0.6));
    await()
        .atMost(CONTROLLERS)
        .alias("a serving pod with adapter d2 (not ready)")
        .until(() -> servingPods(ns, "served").stream().anyMatch(p -> "d2".equals(digestOf(p))));
    assertThat(serving(ns, "served").getStatus().getReadyReplicas()).isEqualTo(1);

    FineTuneJobStatus rolledBack =
        awaitStatus(
            cr,
            s -> s.serving != null && "d2".equals(s.serving.failedAdapterDigest),
            Duration.ofSeconds(90));
    assertThat(rolledBack.serving.adapterDigest).isEqualTo("d1");
    assertThat(Conditions.find(rolledBack.conditions, Conditions.READY).getReason())
        .isEqualTo("RolloutFailed");
    await()
        .atMost(CONTROLLERS)
        .alias("the Deployment controller removes the pod of adapter d2")
        .until(() -> servingPods(ns, "served").stream().noneMatch(p -> "d2".equals(digestOf(p))));
    assertThat(servingPods(ns, "served"))
        .extracting(p -> p.getMetadata().getUid())
        .as("the first adapter's pod served throughout")
        .containsExactly(d1Pod.getMetadata().getUid());
    await()
        .atMost(CONTROLLERS)
        .alias("the Deployment is available again with the first adapter")
        .until(
            () -> {
              Deployment d = serving(ns, "served");
              var s = d.getStatus();
              return s != null
                  && d.getMetadata().getGeneration().equals(s.getObservedGeneration())
                  && Integer.valueOf(1).equals(s.getAvailableReplicas())
                  && Integer.valueOf(1).equals(s.getReplicas());
            });
    assertThat(readyEndpoints(ns, "served-serve")).isEqualTo(1);
    // Serving is True again once the Deployment's status describes the rolled-back spec with no
    // surplus pod (it is False "NotReady" while the new ReplicaSet scales down).
    FineTuneJobStatus settled =
        awaitStatus(cr, s -> Conditions.isTrue(s.conditions, Conditions.SERVING));
    assertThat(settled.serving.adapterDigest).isEqualTo("d1");
    assertThat(Conditions.find(settled.conditions, Conditions.READY).getReason())
        .isEqualTo("RolloutFailed");

    // A third run whose adapter is worse than the base fails the gate: nothing is rolled out.
    // (Its generation moves with every spec write; its status is the Deployment controller's.)
    Long deploymentGeneration = serving(ns, "served").getMetadata().getGeneration();
    Job beforeThird = admin.batch().v1().jobs().inNamespace(ns).withName("served-train").get();
    edit(cr, c -> c.getSpec().restartNonce = "third-run");
    await()
        .atMost(CONTROLLERS)
        .alias("the third training Job")
        .until(
            () -> {
              Job current =
                  admin.batch().v1().jobs().inNamespace(ns).withName("served-train").get();
              return current != null
                  && !current.getMetadata().getUid().equals(beforeThird.getMetadata().getUid());
            });
    Job third = admin.batch().v1().jobs().inNamespace(ns).withName("served-train").get();
    kubelet.exit(awaitRunningPod(third), TrainerExitCodes.SUCCESS, completed("d3", 1.6, 1.9));
    FineTuneJobStatus gated =
        awaitStatus(
            cr,
            s ->
                s.adapter != null
                    && "d3".equals(s.adapter.digest)
                    && Conditions.find(s.conditions, Conditions.PROMOTED) != null
                    && "False"
                        .equals(Conditions.find(s.conditions, Conditions.PROMOTED).getStatus()));
    assertThat(Conditions.find(gated.conditions, Conditions.PROMOTED).getReason())
        .isEqualTo("QualityGateFailed");
    assertThat(gated.serving.adapterDigest).isEqualTo("d1");
    assertThat(serving(ns, "served").getMetadata().getGeneration())
        .as("the Deployment's spec was not touched")
        .isEqualTo(deploymentGeneration);
    assertThat(servingPods(ns, "served"))
        .extracting(p -> p.getMetadata().getUid())
        .containsExactly(d1Pod.getMetadata().getUid());
  }

  /**
   * Deleting a serving FineTuneJob: Kubernetes' garbage collector removes everything it owns (owner
   * references; no finalizer): the Job and its pod, the ConfigMap, the Deployment, its ReplicaSet
   * and pod, the Service.
   */
  @Test
  void deletionCascadesThroughTheGarbageCollector() throws Exception {
    String ns = namespace("delete");
    FineTuneJob cr = create(ns, "gone", servingSpec("10m"));
    Job job = awaitJob(cr);
    kubelet.exit(awaitRunningPod(job), TrainerExitCodes.SUCCESS, completed("dg", 1.6, 0.7));
    awaitStatus(cr, s -> s.phase == Phase.Serving);
    assertThat(everythingIn(ns))
        .extracting(HasMetadata::getKind)
        .contains("Job", "Pod", "ConfigMap", "Deployment", "ReplicaSet", "Service");
    assertThat(get(cr).getMetadata().getFinalizers()).isNullOrEmpty();

    admin.resource(get(cr)).delete();
    await()
        .atMost(GARBAGE_COLLECTION)
        .alias("everything the FineTuneJob owned is collected")
        .untilAsserted(() -> assertThat(everythingIn(ns)).isEmpty());
    assertThat(get(cr)).isNull();
  }

  // --- scenario parts ----------------------------------------------------------------------

  private static String namespace(String prefix) {
    String ns = RealCluster.restrictedNamespace(prefix);
    kubelet.manage(ns);
    return ns;
  }

  /** A small valid FineTuneJob; {@code extraSpec} is YAML indented under spec. */
  private static FineTuneJob create(String ns, String name, String extraSpec) throws IOException {
    String yaml =
        """
        apiVersion: kubetune.io/v1alpha1
        kind: FineTuneJob
        metadata:
          name: %s
          namespace: %s
        spec:
          baseModel:
            uri: s3://models/tiny/
          dataset:
            train: s3://data/train.jsonl
            validationSplit: 0.1
            format: completion
          method:
            type: LoRA
          checkpoints:
            uri: s3://checkpoints/%s/
        %s"""
            .formatted(name, ns, name, extraSpec.indent(0));
    return admin.resource(RealCluster.YAML.readValue(yaml, FineTuneJob.class)).create();
  }

  private static String servingSpec(String readinessTimeout) {
    return """
          serving:
            enabled: true
            readinessTimeout: %s
            gate:
              metric: eval_loss
              mustBeatBase: true
        """
        .formatted(readinessTimeout);
  }

  private static TrainerTermination completed(String digest, double base, double tuned) {
    TrainerTermination t = termination("Completed", "exported the adapter");
    t.format = "peft-lora";
    t.digest = digest;
    t.baseMetrics = Map.of("eval_loss", base);
    t.tunedMetrics = Map.of("eval_loss", tuned);
    return t;
  }

  private static TrainerTermination termination(String reason, String message) {
    TrainerTermination t = new TrainerTermination();
    t.reason = reason;
    t.message = message;
    return t;
  }

  // --- reading the cluster -----------------------------------------------------------------

  /** The reasons of the FineTuneJob's Events, once one with {@code reason} is there. */
  private static List<String> awaitEventReasons(FineTuneJob cr, String reason) {
    await()
        .atMost(CONTROLLERS)
        .alias(reason + " event of " + cr.getMetadata().getName())
        .until(() -> eventReasons(cr).contains(reason));
    return eventReasons(cr);
  }

  private static List<String> eventReasons(FineTuneJob cr) {
    return admin
        .v1()
        .events()
        .inNamespace(cr.getMetadata().getNamespace())
        .list()
        .getItems()
        .stream()
        .filter(e -> cr.getMetadata().getUid().equals(e.getInvolvedObject().getUid()))
        .map(io.fabric8.kubernetes.api.model.Event::getReason)
        .toList();
  }

  private static FineTuneJob get(FineTuneJob cr) {
    return admin
        .resources(FineTuneJob.class)
        .inNamespace(cr.getMetadata().getNamespace())
        .withName(cr.getMetadata().getName())
        .get();
  }

  /** Edits the spec as a user would, again when the operator's status write came in between. */
  private static void edit(FineTuneJob cr, Consumer<FineTuneJob> change) {
    await()
        .atMost(Duration.ofSeconds(20))
        .ignoreExceptionsMatching(
            e -> e instanceof KubernetesClientException k && k.getCode() == 409)
        .until(
            () -> {
              FineTuneJob current = get(cr);
              change.accept(current);
              admin.resource(current).update();
              return true;
            });
  }

  private static Job job(Job job) {
    return admin
        .batch()
        .v1()
        .jobs()
        .inNamespace(job.getMetadata().getNamespace())
        .withName(job.getMetadata().getName())
        .get();
  }

  private static Job awaitJob(FineTuneJob cr) {
    String ns = cr.getMetadata().getNamespace();
    String name = Names.trainingJob(cr);
    await()
        .atMost(CONTROLLERS)
        .alias("training Job " + ns + "/" + name)
        .until(() -> admin.batch().v1().jobs().inNamespace(ns).withName(name).get() != null);
    return admin.batch().v1().jobs().inNamespace(ns).withName(name).get();
  }

  private static JobCondition awaitJobCondition(Job job, String type) {
    await()
        .atMost(CONTROLLERS)
        .alias("Job condition " + type)
        .until(() -> jobCondition(job(job), type).isPresent());
    return jobCondition(job(job), type).orElseThrow();
  }

  private static Optional<JobCondition> jobCondition(Job job, String type) {
    if (job == null || job.getStatus() == null || job.getStatus().getConditions() == null) {
      return Optional.empty();
    }
    return job.getStatus().getConditions().stream()
        .filter(c -> type.equals(c.getType()) && "True".equals(c.getStatus()))
        .findFirst();
  }

  private static List<Pod> podsOf(Job job) {
    return admin
        .pods()
        .inNamespace(job.getMetadata().getNamespace())
        .withLabel("controller-uid", job.getMetadata().getUid())
        .list()
        .getItems();
  }

  /** The one pod of {@code job} that runs (created by the Job controller, started by kubelet). */
  private static Pod awaitRunningPod(Job job) {
    await()
        .atMost(CONTROLLERS)
        .alias("a running pod of Job " + job.getMetadata().getName())
        .until(() -> runningPod(job).isPresent());
    return runningPod(job).orElseThrow();
  }

  private static Optional<Pod> runningPod(Job job) {
    return podsOf(job).stream()
        .filter(p -> p.getMetadata().getDeletionTimestamp() == null)
        .filter(p -> p.getStatus() != null && "Running".equals(p.getStatus().getPhase()))
        .findFirst();
  }

  private static FineTuneJobStatus awaitStatus(
      FineTuneJob cr, Predicate<FineTuneJobStatus> condition) {
    return awaitStatus(cr, condition, CONTROLLERS);
  }

  private static FineTuneJobStatus awaitStatus(
      FineTuneJob cr, Predicate<FineTuneJobStatus> condition, Duration atMost) {
    List<FineTuneJobStatus> last = new ArrayList<>(1);
    try {
      await()
          .atMost(atMost)
          .until(
              () -> {
                FineTuneJob current = get(cr);
                last.clear();
                last.add(current == null ? null : current.getStatus());
                return current != null
                    && current.getStatus() != null
                    && condition.test(current.getStatus());
              });
    } catch (org.awaitility.core.ConditionTimeoutException e) {
      throw new AssertionError(
          "status of "
              + cr.getMetadata().getName()
              + " never matched; last: "
              + (last.isEmpty() ? null : io.kubetune.operator.support.Json.pretty(last.get(0))),
          e);
    }
    return get(cr).getStatus();
  }

  private static Deployment serving(String ns, String name) {
    return admin.apps().deployments().inNamespace(ns).withName(name + "-serve").get();
  }

  private static List<Pod> servingPods(String ns, String name) {
    return admin
        .pods()
        .inNamespace(ns)
        .withLabels(Map.of(Labels.JOB, name, Labels.COMPONENT, Labels.SERVING_COMPONENT))
        .list()
        .getItems()
        .stream()
        .filter(p -> p.getMetadata().getDeletionTimestamp() == null)
        .toList();
  }

  private static String digestOf(Pod pod) {
    var annotations = pod.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(Labels.ADAPTER_DIGEST_ANNOTATION);
  }

  /** Ready endpoints of the Service's EndpointSlices (the EndpointSlice controller's view). */
  private static long readyEndpoints(String ns, String service) {
    return admin
        .discovery()
        .v1()
        .endpointSlices()
        .inNamespace(ns)
        .withLabel("kubernetes.io/service-name", service)
        .list()
        .getItems()
        .stream()
        .flatMap(
            s ->
                s.getEndpoints() == null
                    ? java.util.stream.Stream.empty()
                    : s.getEndpoints().stream())
        .filter(e -> e.getConditions() != null && Boolean.TRUE.equals(e.getConditions().getReady()))
        .count();
  }

  /** Every KubeTune-relevant object left in {@code ns}. */
  private static List<HasMetadata> everythingIn(String ns) {
    List<HasMetadata> all = new ArrayList<>();
    all.addAll(admin.resources(FineTuneJob.class).inNamespace(ns).list().getItems());
    all.addAll(admin.batch().v1().jobs().inNamespace(ns).list().getItems());
    all.addAll(admin.pods().inNamespace(ns).list().getItems());
    all.addAll(
        admin.configMaps().inNamespace(ns).list().getItems().stream()
            .filter(c -> !"kube-root-ca.crt".equals(c.getMetadata().getName()))
            .toList());
    all.addAll(admin.apps().deployments().inNamespace(ns).list().getItems());
    all.addAll(admin.apps().replicaSets().inNamespace(ns).list().getItems());
    all.addAll(admin.services().inNamespace(ns).list().getItems());
    return all;
  }

  /** {@code kubectl} (the control plane's own build) as the administrator; its output. */
  private static String kubectl(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(ControlPlaneBinaries.locate(RealCluster.ROOT).resolve("kubectl").toString());
    command.add("--kubeconfig=" + RealCluster.controlPlane().kubeconfig());
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), out).isZero();
    return out;
  }
}
