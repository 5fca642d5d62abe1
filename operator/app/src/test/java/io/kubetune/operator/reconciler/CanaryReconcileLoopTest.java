package io.kubetune.operator.reconciler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanarySpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.GateSpec;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.TrainingJobPlan;
import io.kubetune.operator.status.Conditions;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The canary rollout with the operator running for real against the Fabric8 mock API server: a
 * second training run is served as a canary next to the first and promoted or rolled back from what
 * the serving pods report (a fake {@link io.kubetune.operator.serving.ServingFacts} playing the
 * pods' {@code GET /v1/variants}).
 */
@EnableKubernetesMockClient(crud = true)
class CanaryReconcileLoopTest {
  static final String NS = "default";
  static final String DEPLOYMENT = "canary-serve";

  KubernetesMockServer server;
  KubernetesClient client;

  Operator operator;
  FakeKubelet kubelet;

  /** What the serving pods report now; asked only while the Deployment serves a canary. */
  volatile List<VariantsReport> pods = List.of();

  final AtomicInteger asked = new AtomicInteger();

  @BeforeEach
  void startOperator() {
    TestResources.installCrd(client);
    operator =
        new Operator(
            o ->
                o.withKubernetesClient(client)
                    .withUseSSAToPatchPrimaryResource(false)
                    .withSSABasedCreateUpdateMatchForDependentResources(false)
                    .withCloseClientOnStop(false));
    operator.register(
        new FineTuneJobReconciler(
            OperatorSettings.defaults().withProgressPollInterval(Duration.ofMillis(200)),
            new FineTuneJobMetrics(new SimpleMeterRegistry()),
            (c, deployment) -> {
              asked.incrementAndGet();
              return pods;
            }));
    operator.start();
    kubelet = new FakeKubelet(client, server);
  }

  @AfterEach
  void stopOperator() {
    operator.stop();
  }

  @Test
  void aSecondRunIsServedAsACanaryAndPromoted() {
    FineTuneJob cr = servingFirstAdapter("10s");
    assertThat(asked.get()).isZero(); // no canary, no polling of the pods

    retrain(cr, "d2");
    Deployment both = awaitDeployment(d -> canaryDigest(d) != null);
    assertThat(ServingModel.adapterOf(both).digest()).isEqualTo("d1");
    assertThat(canaryDigest(both)).isEqualTo("d2");
    assertThat(ServingModel.canaryOf(both).weight()).isEqualTo(25);
    // Both runs' exports side by side below the one checkpoints.uri, each in its run's folder.
    String firstUri = ServingModel.adapterOf(both).uri();
    String secondUri = ServingModel.canaryOf(both).adapter().uri();
    assertThat(firstUri).startsWith("s3://checkpoints/canary/final/");
    assertThat(secondUri).startsWith("s3://checkpoints/canary/final/").isNotEqualTo(firstUri);
    assertThat(get(cr).getStatus().adapter.uri)
        .isEqualTo(secondUri)
        .endsWith("/" + get(cr).getStatus().trainingRevision + "/");
    FineTuneJobStatus observing =
        awaitStatus(
            cr,
            s -> s.serving.canary != null && s.serving.canary.decision == CanaryDecision.Observing);
    assertThat(observing.serving.adapterDigest).isEqualTo("d1");
    assertThat(observing.serving.endpoint).isEqualTo("http://canary-serve.default.svc:8000/v1");
    assertThat(Conditions.find(observing.conditions, Conditions.SERVING).getReason())
        .isEqualTo("CanaryObserving");

    pods = List.of(report(75, 0, 25, 0), report(74, 1, 26, 0));
    kubelet.markDeploymentReady(NS, DEPLOYMENT);
    FineTuneJobStatus counted =
        awaitStatus(cr, s -> s.serving.canary != null && s.serving.canary.requests == 51);
    assertThat(counted.serving.canary.stableRequests).isEqualTo(149);
    assertThat(counted.serving.canary.stableErrors).isEqualTo(1);

    // At startedAt + 10s: promoted, then rolled out alone.
    FineTuneJobStatus promoted =
        awaitStatus(
            cr, Duration.ofSeconds(30), s -> s.serving.canary.decision == CanaryDecision.Promoted);
    assertThat(promoted.serving.canary.message).contains("0 of 51");
    awaitDeployment(
        d -> canaryDigest(d) == null && "d2".equals(ServingModel.adapterOf(d).digest()));
    kubelet.markDeploymentReady(NS, DEPLOYMENT);
    FineTuneJobStatus served =
        awaitStatus(cr, s -> "d2".equals(s.serving.adapterDigest) && s.phase == Phase.Serving);
    assertThat(served.serving.rollout).isNull();
    assertThat(served.serving.endpoint).isEqualTo(observing.serving.endpoint);
    assertThat(Conditions.isTrue(served.conditions, Conditions.READY)).isTrue();
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> assertThat(eventReasons(cr)).contains("CanaryStarted", "CanaryPromoted"));
  }

  @Test
  void aCanaryWithTooManyErrorsIsRolledBackAndTheFirstAdapterKeepsServing() {
    FineTuneJob cr = servingFirstAdapter("10m");
    retrain(cr, "d2");
    awaitDeployment(d -> canaryDigest(d) != null);
    pods = List.of(report(60, 0, 20, 3));
    kubelet.markDeploymentReady(NS, DEPLOYMENT);

    // 3 of 20 > maxErrorRate 0.1: rolled back without waiting for the 10 minutes.
    FineTuneJobStatus back =
        awaitStatus(
            cr,
            s ->
                s.serving.canary != null && s.serving.canary.decision == CanaryDecision.RolledBack);
    assertThat(back.serving.canary.message).contains("3 of 20");
    assertThat(back.serving.failedAdapterDigest).isEqualTo("d2");
    assertThat(back.serving.adapterDigest).isEqualTo("d1");
    Deployment stable = awaitDeployment(d -> canaryDigest(d) == null);
    assertThat(ServingModel.adapterOf(stable).digest()).isEqualTo("d1");
    Event warning = awaitEvent(cr, "CanaryRolledBack");
    assertThat(warning.getType()).isEqualTo("Warning");
    kubelet.markDeploymentReady(NS, DEPLOYMENT);
    FineTuneJobStatus after = awaitStatus(cr, s -> s.phase == Phase.Serving);
    assertThat(after.serving.adapterDigest).isEqualTo("d1");
    assertThat(Conditions.find(after.conditions, Conditions.SERVING).getReason())
        .isEqualTo("CanaryRolledBack");
  }

  @Test
  void aCanaryWhosePodsNeverBecomeReadyIsRolledBack() {
    FineTuneJob cr = servingFirstAdapter("10m");
    retrain(cr, "d2");
    awaitDeployment(d -> canaryDigest(d) != null);
    // The pods with the canary never become ready: at serving.readinessTimeout (5s) it ends.
    FineTuneJobStatus back =
        awaitStatus(
            cr,
            Duration.ofSeconds(30),
            s ->
                s.serving.canary != null && s.serving.canary.decision == CanaryDecision.RolledBack);
    assertThat(back.serving.canary.message).contains("did not become ready within 5s");
    assertThat(back.serving.failedAdapterDigest).isEqualTo("d2");
    Deployment stable = awaitDeployment(d -> canaryDigest(d) == null);
    assertThat(ServingModel.adapterOf(stable).digest()).isEqualTo("d1");
  }

  @Test
  void withoutServingCanaryARetrainOfAServedJobTrainsAndRollsOutPlainly() {
    FineTuneJob cr = servingFirstAdapter(null);
    retrain(cr, "d2");
    Deployment next = awaitDeployment(d -> "d2".equals(ServingModel.adapterOf(d).digest()));
    assertThat(canaryDigest(next)).isNull();
    kubelet.markDeploymentReady(NS, DEPLOYMENT);
    FineTuneJobStatus served =
        awaitStatus(cr, s -> "d2".equals(s.serving.adapterDigest) && s.phase == Phase.Serving);
    assertThat(served.serving.canary).isNull();
    assertThat(asked.get()).isZero();
  }

  /**
   * A FineTuneJob, its first run trained and served; with serving.canary (weight 25, maxErrorRate
   * 0.1, this duration) unless {@code canaryDuration} is null.
   */
  private FineTuneJob servingFirstAdapter(String canaryDuration) {
    FineTuneJob spec = TestResources.minimal("canary");
    spec.getSpec().serving = new ServingSpec();
    spec.getSpec().serving.enabled = true;
    spec.getSpec().serving.readinessTimeout = "5s";
    spec.getSpec().serving.gate = new GateSpec();
    spec.getSpec().serving.gate.metric = EvalMetric.EVAL_LOSS;
    spec.getSpec().serving.gate.mustBeatBase = true;
    if (canaryDuration != null) {
      spec.getSpec().serving.canary = new CanarySpec();
      spec.getSpec().serving.canary.weight = 25;
      spec.getSpec().serving.canary.duration = canaryDuration;
      spec.getSpec().serving.canary.maxErrorRate = 0.1;
    }
    spec.getMetadata().setNamespace(NS);
    FineTuneJob cr = client.resource(spec).create();
    train(awaitJob(null), "d1");
    awaitDeployment(d -> "d1".equals(ServingModel.adapterOf(d).digest()));
    kubelet.markDeploymentReady(NS, DEPLOYMENT);
    awaitStatus(cr, s -> s.phase == Phase.Serving && "d1".equals(s.serving.adapterDigest));
    return cr;
  }

  /** A new run (a new restartNonce, nothing else) whose adapter passes the gate. */
  private void retrain(FineTuneJob cr, String digest) {
    String before = TrainingJobPlan.revisionOf(kubelet.job(NS, "canary-train"));
    await()
        .atMost(Duration.ofSeconds(10))
        .ignoreExceptions()
        .until(
            () -> {
              client
                  .resources(FineTuneJob.class)
                  .inNamespace(NS)
                  .withName(cr.getMetadata().getName())
                  .edit(
                      c -> {
                        // Only the nonce: checkpoints.uri stays, each run exports into its
                        // own final/<trainingRevision>/ below it.
                        c.getSpec().restartNonce = "run-" + digest;
                        return c;
                      });
              return true;
            });
    train(awaitJob(before), digest);
  }

  private void train(Job job, String digest) {
    Pod pod = kubelet.startPod(job, digest);
    kubelet.succeed(
        job,
        pod,
        "{\"reason\":\"Completed\",\"format\":\"peft-lora\",\"digest\":\""
            + digest
            + "\",\"baseMetrics\":{\"eval_loss\":1.6},\"tunedMetrics\":{\"eval_loss\":0.7}}");
  }

  /** The training Job, once its revision is not {@code notRevision}. */
  private Job awaitJob(String notRevision) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Job j = kubelet.job(NS, "canary-train");
              return j != null
                  && (notRevision == null || !notRevision.equals(TrainingJobPlan.revisionOf(j)));
            });
    return kubelet.job(NS, "canary-train");
  }

  private Deployment awaitDeployment(Predicate<Deployment> condition) {
    await()
        .atMost(Duration.ofSeconds(20))
        .until(
            () -> {
              Deployment d = client.apps().deployments().inNamespace(NS).withName(DEPLOYMENT).get();
              return d != null && condition.test(d);
            });
    return client.apps().deployments().inNamespace(NS).withName(DEPLOYMENT).get();
  }

  private static String canaryDigest(Deployment d) {
    var canary = ServingModel.canaryOf(d);
    return canary == null ? null : canary.adapter().digest();
  }

  private FineTuneJobStatus awaitStatus(FineTuneJob cr, Predicate<FineTuneJobStatus> condition) {
    return awaitStatus(cr, Duration.ofSeconds(15), condition);
  }

  private FineTuneJobStatus awaitStatus(
      FineTuneJob cr, Duration atMost, Predicate<FineTuneJobStatus> condition) {
    await()
        .atMost(atMost)
        .until(
            () -> {
              FineTuneJobStatus s = get(cr).getStatus();
              return s != null && s.serving != null && condition.test(s);
            });
    return get(cr).getStatus();
  }

  private FineTuneJob get(FineTuneJob cr) {
    return client
        .resources(FineTuneJob.class)
        .inNamespace(NS)
        .withName(cr.getMetadata().getName())
        .get();
  }

  private List<String> eventReasons(FineTuneJob cr) {
    return client.v1().events().inNamespace(NS).list().getItems().stream()
        .filter(e -> cr.getMetadata().getName().equals(e.getInvolvedObject().getName()))
        .map(Event::getReason)
        .toList();
  }

  private Event awaitEvent(FineTuneJob cr, String reason) {
    await().atMost(Duration.ofSeconds(10)).until(() -> eventReasons(cr).contains(reason));
    return client.v1().events().inNamespace(NS).list().getItems().stream()
        .filter(e -> reason.equals(e.getReason()))
        .findFirst()
        .orElseThrow();
  }

  /** One pod's GET /v1/variants during the canary of d2 next to d1. */
  private static VariantsReport report(
      long stable, long stableErrors, long canary, long canaryErrors) {
    VariantsReport r = new VariantsReport();
    r.data.add(variant("stable", "d1", stable, stableErrors));
    r.data.add(variant("canary", "d2", canary, canaryErrors));
    return r;
  }

  private static VariantsReport.Variant variant(
      String variant, String digest, long requests, long errors) {
    VariantsReport.Variant v = new VariantsReport.Variant();
    v.model = "canary";
    v.variant = variant;
    v.sha256 = digest;
    v.requests = requests;
    v.errors = errors;
    return v;
  }
}
