package io.kubetune.operator.reconciler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.Labels;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.TrainingJobPlan;
import io.kubetune.operator.model.TrainingRevision;
import io.kubetune.operator.status.CheckpointLedger;
import io.kubetune.operator.status.Conditions;
import io.kubetune.operator.support.Json;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The operator running for real (JOSDK, informers, status patches) against the Fabric8 mock API
 * server in CRUD mode, with {@link FakeKubelet} playing the Job controller and kubelet.
 */
@EnableKubernetesMockClient(crud = true)
class FineTuneJobReconcileLoopTest {
  static final String NS = "default";
  static final String OPERATOR_AGENT = "kubetune-operator-under-test";

  /** Every request the operator made in any test, checked against manifests/rbac.yaml. */
  static final List<ApiRequest> OPERATOR_REQUESTS = Collections.synchronizedList(new ArrayList<>());

  KubernetesMockServer server;
  KubernetesClient client;

  Operator operator;
  KubernetesClient operatorClient;
  SimpleMeterRegistry meters;
  FakeKubelet kubelet;

  @BeforeEach
  void startOperator() throws Exception {
    TestResources.installCrd(client);
    Config config =
        new ConfigBuilder(client.getConfiguration()).withUserAgent(OPERATOR_AGENT).build();
    operatorClient = new KubernetesClientBuilder().withConfig(config).build();
    meters = new SimpleMeterRegistry();
    operator =
        new Operator(
            o ->
                o.withKubernetesClient(operatorClient)
                    .withUseSSAToPatchPrimaryResource(false)
                    .withSSABasedCreateUpdateMatchForDependentResources(false)
                    .withCloseClientOnStop(false));
    operator.register(
        new FineTuneJobReconciler(
            OperatorSettings.defaults().withProgressPollInterval(Duration.ofMillis(200)),
            new FineTuneJobMetrics(meters)));
    operator.start();
    kubelet = new FakeKubelet(client, server);
  }

  @AfterEach
  void stopOperator() throws Exception {
    operator.stop();
    operatorClient.close();
    RecordedRequest request;
    while ((request = server.takeRequest(1, TimeUnit.MILLISECONDS)) != null) {
      if (OPERATOR_AGENT.equals(request.getHeader("User-Agent"))) {
        OPERATOR_REQUESTS.add(ApiRequest.parse(request.getMethod(), request.getPath()));
      }
    }
  }

  @Test
  void createsConfigMapAndJobAndFollowsTheJobToSuccess() throws Exception {
    FineTuneJob cr = create(TestResources.example("support-tickets-classification.yaml"));

    Job job = awaitJob(cr);
    ConfigMap configMap =
        client.configMaps().inNamespace(NS).withName("support-tickets-trainer-config").get();
    assertThat(configMap).isNotNull();
    assertThat(configMap.getMetadata().getOwnerReferences().get(0).getUid())
        .isEqualTo(cr.getMetadata().getUid());
    TrainerConfig rendered =
        Json.mapper()
            .readValue(configMap.getData().get(TrainerConfig.CONFIG_MAP_KEY), TrainerConfig.class);
    assertThat(rendered.job.uid).isEqualTo(cr.getMetadata().getUid());
    assertThat(job.getMetadata().getOwnerReferences().get(0).getController()).isTrue();
    assertThat(TrainingJobPlan.revisionOf(job)).isEqualTo(TrainingRevision.of(cr));

    FineTuneJobStatus queued = awaitStatus(cr, s -> s.phase == Phase.Queued);
    assertThat(queued.jobName).isEqualTo("support-tickets-train");
    assertThat(queued.observedGeneration).isEqualTo(cr.getMetadata().getGeneration());
    assertThat(Conditions.isTrue(queued.conditions, Conditions.VALIDATED)).isTrue();

    Pod pod = kubelet.startPod(job, "a1");
    FineTuneJobStatus running = awaitStatus(cr, s -> s.phase == Phase.Running);
    assertThat(Conditions.isTrue(running.conditions, Conditions.RUNNING)).isTrue();
    assertThat(running.attempts).isEqualTo(1);
    assertThat(running.startTime).isNotNull();

    kubelet.succeed(job, pod);
    FineTuneJobStatus done = awaitStatus(cr, s -> s.phase == Phase.Succeeded);
    assertThat(Conditions.isTrue(done.conditions, Conditions.COMPLETE)).isTrue();
    assertThat(Conditions.isTrue(done.conditions, Conditions.FAILED)).isFalse();
    assertThat(done.completionTime).isNotNull();

    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(eventReasons(cr))
                    .contains("JobCreated", "Queued", "Started", "Succeeded"));
    // One event per transition, not one per reconcile.
    assertThat(eventReasons(cr).stream().filter("Started"::equals)).hasSize(1);
  }

  @Test
  void invalidSpecIsReportedAndNothingIsCreated() {
    FineTuneJob bad = TestResources.minimal("broken");
    bad.getSpec().dataset.validation = "s3://data/val.jsonl"; // together with validationSplit
    bad.getSpec().method.lora = new io.kubetune.api.v1alpha1.LoraSpec();
    bad.getSpec().method.lora.targetModules = List.of("attn");
    FineTuneJob cr = create(bad);

    FineTuneJobStatus status = awaitStatus(cr, s -> s.phase == Phase.Failed);
    var validated = Conditions.find(status.conditions, Conditions.VALIDATED);
    assertThat(validated.getStatus()).isEqualTo("False");
    assertThat(validated.getReason()).isEqualTo("InvalidSpec");
    assertThat(validated.getMessage())
        .contains("spec.dataset.validationSplit")
        .contains("spec.method.lora.targetModules")
        .contains("fix:");
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(() -> assertThat(eventReasons(cr)).contains("InvalidSpec"));
    assertThat(client.batch().v1().jobs().inNamespace(NS).list().getItems()).isEmpty();
    assertThat(
            client.configMaps().inNamespace(NS).withLabel(Labels.JOB, "broken").list().getItems())
        .isEmpty();
  }

  @Test
  void badInputExitFailsTheJobWithTheTrainersReason() {
    FineTuneJob cr = create(TestResources.minimal("badinput"));
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "x1");
    awaitStatus(cr, s -> s.phase == Phase.Running);
    kubelet.fail(
        job,
        pod,
        2,
        "{\"reason\":\"BadInput\",\"message\":\"train.jsonl line 3: not valid JSON; fix the line\"}");

    FineTuneJobStatus failed = awaitStatus(cr, s -> s.phase == Phase.Failed);
    var condition = Conditions.find(failed.conditions, Conditions.FAILED);
    assertThat(condition.getStatus()).isEqualTo("True");
    assertThat(condition.getReason()).isEqualTo("BadInput");
    assertThat(failed.message).contains("train.jsonl line 3");
  }

  @Test
  void progressComesFromTheTrainersLog() {
    FineTuneJob cr = create(TestResources.minimal("progress"));
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "l1");
    kubelet.log(pod, "starting");
    kubelet.log(
        pod,
        "{\"event\":\"progress\",\"step\":30,\"totalSteps\":120,\"epoch\":0.5,"
            + "\"loss\":1.23456,\"lr\":1e-4,\"tokensPerSecond\":812.4,\"etaSeconds\":95.2}");
    FineTuneJobStatus running =
        awaitStatus(cr, s -> s.progress != null && Long.valueOf(30).equals(s.progress.step));
    assertThat(running.progress.summary).isEqualTo("30/120 (25%)");
    assertThat(running.progress.loss).isEqualTo(1.2346);
    assertThat(running.progress.eta).isEqualTo("1m35s");

    // Polled while running: a later line shows up without any Kubernetes event.
    kubelet.log(
        pod,
        "{\"event\":\"progress\",\"step\":60,\"totalSteps\":120,\"loss\":0.9,"
            + "\"tokensPerSecond\":800,\"etaSeconds\":40}");
    kubelet.log(pod, "{\"event\":\"eval\",\"step\":60,\"eval_loss\":1.01}");
    FineTuneJobStatus later =
        awaitStatus(cr, s -> s.progress != null && Long.valueOf(60).equals(s.progress.step));
    assertThat(later.progress.evalLoss).isEqualTo(1.01);

    kubelet.log(pod, "{\"event\":\"done\",\"steps\":120,\"eval_loss\":0.8}");
    kubelet.succeed(job, pod);
    FineTuneJobStatus done = awaitStatus(cr, s -> s.phase == Phase.Succeeded);
    assertThat(done.progress.step).isEqualTo(120L);
    assertThat(done.progress.summary).isEqualTo("120/120 (100%)");
    assertThat(done.progress.evalLoss).isEqualTo(0.8);
  }

  @Test
  void suspendAndResume() {
    FineTuneJob cr = create(TestResources.minimal("pausable"));
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "p1");
    awaitStatus(cr, s -> s.phase == Phase.Running);
    kubelet.log(pod, checkpointLine("pausable", 100, 1.4));
    kubelet.log(pod, checkpointLine("pausable", 200, 1.2));
    awaitStatus(cr, s -> latestStep(s) == 200);

    edit(cr, c -> c.getSpec().suspend = true);
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                Boolean.TRUE.equals(
                    kubelet.job(NS, job.getMetadata().getName()).getSpec().getSuspend()));
    // Pods still terminating (the trainer checkpoints on SIGTERM): still Running.
    assertThat(get(cr).getStatus().phase).isEqualTo(Phase.Running);
    kubelet.suspend(job, pod);
    FineTuneJobStatus suspended = awaitStatus(cr, s -> s.phase == Phase.Suspended);
    // The pod and its log are gone; the ledger stays.
    assertThat(steps(suspended.checkpoints)).containsExactly(100L, 200L);
    assertThat(suspended.latestCheckpoint.step).isEqualTo(200L);

    edit(cr, c -> c.getSpec().suspend = false);
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                Boolean.FALSE.equals(
                    kubelet.job(NS, job.getMetadata().getName()).getSpec().getSuspend()));
    Pod second = kubelet.startPod(kubelet.job(NS, job.getMetadata().getName()), "p2");
    FineTuneJobStatus resumed = awaitStatus(cr, s -> s.phase == Phase.Running);
    assertThat(resumed.attempts).isEqualTo(2);
    // Before the new trainer says anything, the checkpoint it resumes from is still reported.
    assertThat(resumed.latestCheckpoint.step).isEqualTo(200L);

    kubelet.log(second, resumeLine("pausable", 200));
    kubelet.log(second, checkpointLine("pausable", 300, 1.1));
    FineTuneJobStatus later = awaitStatus(cr, s -> latestStep(s) == 300);
    assertThat(steps(later.checkpoints)).containsExactly(100L, 200L, 300L);
    assertThat(later.bestCheckpoint.step).isEqualTo(300L);
  }

  @Test
  void checkpointLedgerFillsFromTheTrainersLogIsBoundedAndNeverMovesBack() {
    FineTuneJob cr = create(TestResources.minimal("ledger"));
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "c1");
    for (long step = 10; step <= 120; step += 10) {
      // Step 20 has the best eval_loss of the run.
      double evalLoss = step == 20 ? 0.3 : 1.0 + step / 1000.0;
      kubelet.log(pod, "{\"event\":\"eval\",\"step\":" + step + ",\"eval_loss\":" + evalLoss + "}");
      kubelet.log(pod, checkpointLine("ledger", step, evalLoss));
    }
    FineTuneJobStatus filled = awaitStatus(cr, s -> latestStep(s) == 120);
    assertThat(steps(filled.checkpoints))
        .hasSize(CheckpointLedger.MAX_ENTRIES)
        .containsExactly(30L, 40L, 50L, 60L, 70L, 80L, 90L, 100L, 110L, 120L);
    assertThat(filled.latestCheckpoint.uri).isEqualTo("s3://checkpoints/ledger/step-000000120/");
    assertThat(filled.latestCheckpoint.time).isEqualTo("2025-01-07T10:02:00Z");
    // The best one has left checkpoints[] but is still reported.
    assertThat(filled.bestCheckpoint.step).isEqualTo(20L);
    assertThat(filled.bestCheckpoint.metrics).containsEntry("eval_loss", 0.3);

    // An older checkpoint line shows up (say, a line the trainer repeats from an earlier step):
    // once the operator has read it (the progress line after it is in status), nothing moved.
    kubelet.log(pod, checkpointLine("ledger", 60, 0.9));
    kubelet.log(pod, resumeLine("ledger", 5));
    kubelet.log(
        pod,
        "{\"event\":\"progress\",\"step\":121,\"totalSteps\":200,\"loss\":0.8,"
            + "\"tokensPerSecond\":800,\"etaSeconds\":40}");
    FineTuneJobStatus after =
        awaitStatus(cr, s -> s.progress != null && Long.valueOf(121).equals(s.progress.step));
    assertThat(after.latestCheckpoint)
        .usingRecursiveComparison()
        .isEqualTo(filled.latestCheckpoint);
    assertThat(after.checkpoints).usingRecursiveComparison().isEqualTo(filled.checkpoints);
    assertThat(after.bestCheckpoint).usingRecursiveComparison().isEqualTo(filled.bestCheckpoint);
  }

  /**
   * Preemption is not a failure: the Job's podFailurePolicy (TrainingJobBuilderTest) does not count
   * the pod, so the Job stays active and starts another pod, which resumes from the checkpoint the
   * trainer committed on SIGTERM. Bad input on that attempt fails the run at once.
   */
  @Test
  void preemptedAttemptResumesAndBadInputThenFailsAtOnce() {
    FineTuneJob cr = create(TestResources.minimal("preempt"));
    Job job = awaitJob(cr);
    Pod first = kubelet.startPod(job, "q1");
    kubelet.log(first, checkpointLine("preempt", 100, 1.3));
    awaitStatus(cr, s -> latestStep(s) == 100);

    // SIGTERM: the trainer commits step 130 and exits 4 (the operator misses that line here).
    kubelet.preempt(job, first);
    FineTuneJobStatus interrupted =
        awaitStatus(cr, s -> s.phase == Phase.Queued && s.message.contains("disrupted"));
    assertThat(interrupted.message).contains("preempt-train-q1").contains("resumes");
    assertThat(Conditions.isTrue(interrupted.conditions, Conditions.FAILED)).isFalse();
    assertThat(interrupted.latestCheckpoint.step).isEqualTo(100L);

    Pod second = kubelet.startPod(kubelet.job(NS, job.getMetadata().getName()), "q2");
    kubelet.log(second, resumeLine("preempt", 130));
    FineTuneJobStatus resumed =
        awaitStatus(cr, s -> s.phase == Phase.Running && latestStep(s) == 130);
    assertThat(resumed.attempts).isEqualTo(2);
    assertThat(resumed.podName).isEqualTo("preempt-train-q2");
    assertThat(steps(resumed.checkpoints)).containsExactly(100L, 130L);
    assertThat(resumed.latestCheckpoint.uri).isEqualTo("s3://checkpoints/preempt/step-000000130/");
    assertThat(Conditions.isTrue(resumed.conditions, Conditions.FAILED)).isFalse();

    kubelet.fail(
        job, second, 2, "{\"reason\":\"BadInput\",\"message\":\"val.jsonl line 9: no text\"}");
    FineTuneJobStatus failed = awaitStatus(cr, s -> s.phase == Phase.Failed);
    assertThat(Conditions.find(failed.conditions, Conditions.FAILED).getReason())
        .isEqualTo("BadInput");
    assertThat(failed.attempts).isEqualTo(2);
    assertThat(failed.latestCheckpoint.step).isEqualTo(130L);
  }

  /**
   * A bit-flipped checkpoint is detected by its checksum when the next attempt resumes: the trainer
   * falls back to the one before and says so in its {@code resume} line. The operator shows the
   * reason in status and as a Warning Event, marks the rejected entry of the ledger and moves
   * latestCheckpoint back to the checkpoint actually resumed from, reports a later failed
   * checkpoint the same way, and a re-read log writes nothing.
   */
  @Test
  void aCorruptCheckpointSkippedAtResumeIsReportedAndLatestIsTheResumedOne() {
    FineTuneJob cr = create(TestResources.minimal("corrupt"));
    Job job = awaitJob(cr);
    Pod first = kubelet.startPod(job, "k1");
    kubelet.log(first, checkpointLine("corrupt", 40, 1.2));
    kubelet.log(first, checkpointLine("corrupt", 50, 1.1));
    awaitStatus(cr, s -> latestStep(s) == 50);

    // Preempted; meanwhile a bit of step 50's trainable.safetensors flips in storage.
    kubelet.preempt(job, first);
    awaitStatus(cr, s -> s.phase == Phase.Queued);
    Pod second = kubelet.startPod(kubelet.job(NS, job.getMetadata().getName()), "k2");
    kubelet.log(
        second,
        "{\"event\":\"resume\",\"step\":40,\"uri\":\"s3://checkpoints/corrupt/step-000000040/\","
            + "\"time\":\"2025-01-07T10:00:00.250Z\",\"metrics\":{\"eval_loss\":1.2},"
            + "\"skipped\":[{\"step\":50,\"uri\":\"s3://checkpoints/corrupt/step-000000050/\","
            + "\"reason\":\"checksum mismatch: file trainable.safetensors has SHA-256 59...,"
            + " manifest says a8...\"}]}");
    FineTuneJobStatus resumed =
        awaitStatus(cr, s -> s.phase == Phase.Running && latestStep(s) == 40);
    assertThat(resumed.latestCheckpoint.uri).isEqualTo("s3://checkpoints/corrupt/step-000000040/");
    // Step 50 stays in the history, marked; it is neither latest nor best any more.
    assertThat(steps(resumed.checkpoints)).containsExactly(40L, 50L);
    assertThat(resumed.checkpoints.get(0).rejected).isNull();
    assertThat(resumed.checkpoints.get(1).rejected)
        .startsWith("checksum mismatch: file trainable.safetensors");
    assertThat(resumed.bestCheckpoint.step).isEqualTo(40L);
    assertThat(resumed.checkpointWarnings).hasSize(1);
    var skipped = resumed.checkpointWarnings.get(0);
    assertThat(skipped.reason).isEqualTo("CheckpointSkipped");
    assertThat(skipped.step).isEqualTo(50L);
    assertThat(skipped.uri).isEqualTo("s3://checkpoints/corrupt/step-000000050/");
    assertThat(skipped.message)
        .contains("checksum mismatch: file trainable.safetensors")
        .contains("resumed from step 40 (s3://checkpoints/corrupt/step-000000040/)");
    Event skippedEvent = awaitEvent(cr, "CheckpointSkipped");
    assertThat(skippedEvent.getType()).isEqualTo("Warning");
    assertThat(skippedEvent.getMessage()).isEqualTo(skipped.message);

    // Later the store is down past the retries: a warning, training goes on.
    kubelet.log(
        second,
        "{\"event\":\"warning\",\"reason\":\"CheckpointFailed\",\"step\":60,"
            + "\"consecutiveFailures\":1,\"lastCheckpointStep\":40,\"message\":\"PUT"
            + " (If-None-Match: *) s3://checkpoints/corrupt/step-000000060/manifest.json failed"
            + " after 10 attempts in 88.1 s\"}");
    FineTuneJobStatus failed =
        awaitStatus(cr, s -> s.checkpointWarnings != null && s.checkpointWarnings.size() == 2);
    assertThat(failed.phase).isEqualTo(Phase.Running);
    assertThat(failed.latestCheckpoint.step).isEqualTo(40L);
    assertThat(failed.checkpointWarnings.get(1).message)
        .contains("step 60 could not be written")
        .contains("step 40, stays in force");
    assertThat(awaitEvent(cr, "CheckpointFailed").getType()).isEqualTo("Warning");

    // The trainer keeps running and its tail is re-read every poll: no write, no new Event.
    awaitSettled();
    drainRequests();
    double before = unchangedReconciles();
    await().atMost(Duration.ofSeconds(10)).until(() -> unchangedReconciles() >= before + 3);
    assertThat(operatorWrites(drainRequests())).isEmpty();
    assertThat(eventReasons(cr).stream().filter(r -> r.startsWith("Checkpoint"))).hasSize(2);
  }

  @Test
  void restartNonceReplacesTheJobWithANewRevision() {
    FineTuneJob cr = create(TestResources.minimal("rerun"));
    Job first = awaitJob(cr);
    String firstRevision = TrainingJobPlan.revisionOf(first);

    edit(cr, c -> c.getSpec().restartNonce = "second-try");
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Job j = kubelet.job(NS, "rerun-train");
              return j != null && !firstRevision.equals(TrainingJobPlan.revisionOf(j));
            });
    Job second = kubelet.job(NS, "rerun-train");
    assertThat(second.getMetadata().getUid()).isNotEqualTo(first.getMetadata().getUid());
    FineTuneJobStatus status =
        awaitStatus(cr, s -> TrainingJobPlan.revisionOf(second).equals(s.trainingRevision));
    assertThat(status.phase).isIn(Phase.Pending, Phase.Queued);
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(() -> assertThat(eventReasons(cr)).contains("JobReplaced"));
  }

  @Test
  void trainingFieldEditedWithoutRestartNonceIsRefusedAndTheJobLeftAlone() {
    // The mock API server, like local mode, enforces no CEL: the operator must.
    FineTuneJob cr = create(TestResources.minimal("frozen"));
    Job job = awaitJob(cr);
    awaitStatus(cr, s -> s.phase == Phase.Queued && s.trainingFields != null);

    edit(
        cr,
        c -> {
          c.getSpec().hyperparameters = new io.kubetune.api.v1alpha1.HyperparametersSpec();
          c.getSpec().hyperparameters.learningRate = 1e-3;
        });
    FineTuneJobStatus refused =
        awaitStatus(cr, s -> !Conditions.isTrue(s.conditions, Conditions.VALIDATED));
    assertThat(Conditions.findMessage(refused.conditions, Conditions.VALIDATED).orElseThrow())
        .contains("spec.hyperparameters: changed after training started")
        .contains("spec.restartNonce");
    assertThat(refused.phase).isEqualTo(Phase.Queued);
    assertThat(kubelet.job(NS, "frozen-train").getMetadata().getUid())
        .isEqualTo(job.getMetadata().getUid());
    assertThat(TrainingJobPlan.revisionOf(kubelet.job(NS, "frozen-train")))
        .isEqualTo(TrainingJobPlan.revisionOf(job));

    edit(cr, c -> c.getSpec().restartNonce = "with-new-learning-rate");
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Job j = kubelet.job(NS, "frozen-train");
              return j != null
                  && !TrainingJobPlan.revisionOf(job).equals(TrainingJobPlan.revisionOf(j));
            });
    awaitStatus(cr, s -> Conditions.isTrue(s.conditions, Conditions.VALIDATED));
  }

  @Test
  void changedResourcesReplaceThePodWithinTheSameRun() {
    FineTuneJob cr = create(TestResources.minimal("resize"));
    Job first = awaitJob(cr);
    kubelet.startPod(first, "r1");
    FineTuneJobStatus running = awaitStatus(cr, s -> s.phase == Phase.Running);

    edit(
        cr,
        c -> {
          c.getSpec().resources = new io.kubetune.api.v1alpha1.ResourcesSpec();
          c.getSpec().resources.memory = new io.fabric8.kubernetes.api.model.Quantity("16Gi");
        });
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Job j = kubelet.job(NS, "resize-train");
              return j != null && !j.getMetadata().getUid().equals(first.getMetadata().getUid());
            });
    Job second = kubelet.job(NS, "resize-train");
    assertThat(
            second
                .getSpec()
                .getTemplate()
                .getSpec()
                .getContainers()
                .get(0)
                .getResources()
                .getLimits())
        .containsEntry("memory", new io.fabric8.kubernetes.api.model.Quantity("16Gi"));
    kubelet.startPod(second, "r2");
    FineTuneJobStatus after =
        awaitStatus(cr, s -> s.phase == Phase.Running && "resize-train-r2".equals(s.podName));
    // Same run: same revision, attempts keep counting.
    assertThat(after.trainingRevision).isEqualTo(running.trainingRevision);
    assertThat(after.attempts).isEqualTo(2);
  }

  @Test
  void servingOnlyChangeDoesNotTouchTheJob() {
    FineTuneJob cr = create(TestResources.minimal("serving"));
    Job job = awaitJob(cr);
    awaitStatus(cr, s -> s.phase == Phase.Queued);
    drainRequests();

    edit(
        cr,
        c -> {
          c.getSpec().serving = new ServingSpec();
          c.getSpec().serving.replicas = 2;
        });
    long generation = get(cr).getMetadata().getGeneration();
    awaitStatus(cr, s -> s.observedGeneration != null && s.observedGeneration == generation);
    Job after = kubelet.job(NS, "serving-train");
    assertThat(after.getMetadata().getUid()).isEqualTo(job.getMetadata().getUid());
    assertThat(operatorWrites(drainRequests()))
        .noneMatch(r -> r.resource().startsWith("jobs") || r.resource().startsWith("configmaps"));
  }

  @Test
  void promotedAdapterIsServedAndServingChangesDoNotRetrain() {
    FineTuneJob spec = TestResources.minimal("served");
    spec.getSpec().serving = new ServingSpec();
    spec.getSpec().serving.enabled = true;
    spec.getSpec().serving.gate = new io.kubetune.api.v1alpha1.GateSpec();
    spec.getSpec().serving.gate.metric = io.kubetune.api.v1alpha1.EvalMetric.EVAL_LOSS;
    spec.getSpec().serving.gate.mustBeatBase = true;
    FineTuneJob cr = create(spec);
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "v1");
    kubelet.succeed(
        job,
        pod,
        "{\"reason\":\"Completed\",\"format\":\"peft-lora\",\"digest\":\"d1\","
            + "\"baseMetrics\":{\"eval_loss\":1.6},\"tunedMetrics\":{\"eval_loss\":0.7}}");

    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                client.apps().deployments().inNamespace(NS).withName("served-serve").get() != null);
    var deployment = client.apps().deployments().inNamespace(NS).withName("served-serve").get();
    assertThat(deployment.getSpec().getTemplate().getMetadata().getAnnotations())
        .containsEntry(Labels.ADAPTER_DIGEST_ANNOTATION, "d1");
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> client.services().inNamespace(NS).withName("served-serve").get() != null);
    FineTuneJobStatus rolling = get(cr).getStatus();
    assertThat(Conditions.find(rolling.conditions, Conditions.PROMOTED).getReason())
        .isEqualTo("QualityGatePassed");

    kubelet.markDeploymentReady(NS, "served-serve");
    FineTuneJobStatus serving = awaitStatus(cr, s -> s.phase == Phase.Serving);
    assertThat(serving.serving.endpoint).isEqualTo("http://served-serve.default.svc:8000/v1");
    assertThat(serving.serving.adapterDigest).isEqualTo("d1");
    assertThat(Conditions.isTrue(serving.conditions, Conditions.READY)).isTrue();
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(() -> assertThat(eventReasons(cr)).contains("Serving"));

    // Serving-only change: the Deployment follows, training does not restart.
    edit(cr, c -> c.getSpec().serving.replicas = 3);
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                client
                        .apps()
                        .deployments()
                        .inNamespace(NS)
                        .withName("served-serve")
                        .get()
                        .getSpec()
                        .getReplicas()
                    == 3);
    assertThat(kubelet.job(NS, "served-train").getMetadata().getUid())
        .isEqualTo(job.getMetadata().getUid());

    // Serving off: Deployment and Service go, the training result stays.
    edit(cr, c -> c.getSpec().serving.enabled = false);
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                client.apps().deployments().inNamespace(NS).withName("served-serve").get() == null
                    && client.services().inNamespace(NS).withName("served-serve").get() == null);
    FineTuneJobStatus off = awaitStatus(cr, s -> s.phase == Phase.Succeeded);
    assertThat(off.serving).isNull();
    assertThat(off.adapter.digest).isEqualTo("d1");
  }

  @Test
  void unchangedResyncWritesNothing() {
    FineTuneJob cr = create(TestResources.minimal("steady"));
    Job job = awaitJob(cr);
    kubelet.startPod(job, "s1");
    awaitStatus(cr, s -> s.phase == Phase.Running);
    awaitSettled();
    drainRequests();
    double before = unchangedReconciles();

    // Touch the Job (a label the operator does not own): an event, a reconcile, nothing to do.
    client
        .batch()
        .v1()
        .jobs()
        .inNamespace(NS)
        .withName(job.getMetadata().getName())
        .edit(
            j -> {
              j.getMetadata().getLabels().put("touched", "yes");
              return j;
            });
    await().atMost(Duration.ofSeconds(10)).until(() -> unchangedReconciles() > before);
    // And the progress polls after it (the trainer is running) write nothing either.
    await().atMost(Duration.ofSeconds(10)).until(() -> unchangedReconciles() >= before + 3);

    assertThat(operatorWrites(drainRequests())).isEmpty();
  }

  @Test
  void finishedRunIsNotRetrainedWhenItsJobIsDeleted() {
    FineTuneJob cr = create(TestResources.minimal("ttl"));
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "t1");
    kubelet.succeed(job, pod);
    awaitStatus(cr, s -> s.phase == Phase.Succeeded);
    double before = unchangedReconciles();

    // ttlSecondsAfterFinished: Kubernetes deletes the finished Job.
    client.batch().v1().jobs().inNamespace(NS).withName(job.getMetadata().getName()).delete();
    // The deletion reaches the operator (a reconcile that finds nothing to change) ...
    await().atMost(Duration.ofSeconds(10)).until(() -> unchangedReconciles() > before);
    // ... and it neither recreated the Job nor moved the run back.
    assertThat(kubelet.job(NS, job.getMetadata().getName())).isNull();
    assertThat(get(cr).getStatus().phase).isEqualTo(Phase.Succeeded);
    assertThat(eventReasons(cr).stream().filter("JobCreated"::equals)).hasSize(1);
  }

  /**
   * The mock API server has no garbage collector, so this checks what the real one needs: every
   * child carries exactly one owner reference, to this FineTuneJob's uid, as its controller and
   * blocking owner deletion (foreground deletion waits for it). Then it plays the collector
   * (deletes every object whose owner is gone) and checks nothing of the FineTuneJob is left.
   */
  @Test
  void childrenAreOwnedSoDeletionCascadesWithoutAFinalizer() {
    FineTuneJob spec = TestResources.minimal("gone");
    spec.getSpec().serving = new ServingSpec();
    spec.getSpec().serving.enabled = true;
    FineTuneJob cr = create(spec);
    Job job = awaitJob(cr);
    Pod pod = kubelet.startPod(job, "g1");
    kubelet.succeed(
        job, pod, "{\"reason\":\"Completed\",\"format\":\"peft-lora\",\"digest\":\"g1\"}");
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> client.services().inNamespace(NS).withName("gone-serve").get() != null);
    assertThat(get(cr).getMetadata().getFinalizers()).isNullOrEmpty();

    List<HasMetadata> children = childrenOf("gone");
    assertThat(children)
        .extracting(HasMetadata::getKind)
        .containsExactlyInAnyOrder("Job", "ConfigMap", "Deployment", "Service");
    for (HasMetadata child : children) {
      assertThat(child.getMetadata().getOwnerReferences())
          .as("owner references of %s", child.getKind())
          .singleElement()
          .satisfies(
              owner -> {
                assertThat(owner.getUid()).isEqualTo(cr.getMetadata().getUid());
                assertThat(owner.getKind()).isEqualTo(FineTuneJob.KIND);
                assertThat(owner.getApiVersion()).isEqualTo(FineTuneJob.API_VERSION);
                assertThat(owner.getName()).isEqualTo("gone");
                assertThat(owner.getController()).isTrue();
                assertThat(owner.getBlockOwnerDeletion()).isTrue();
              });
    }

    client.resource(get(cr)).delete();
    await().atMost(Duration.ofSeconds(5)).until(() -> get(cr) == null);
    collectGarbage(cr.getMetadata().getUid());
    assertThat(childrenOf("gone")).isEmpty();
  }

  /** Every object labelled as belonging to FineTuneJob {@code name}. */
  private List<HasMetadata> childrenOf(String name) {
    List<HasMetadata> children = new ArrayList<>();
    children.addAll(
        client.batch().v1().jobs().inNamespace(NS).withLabel(Labels.JOB, name).list().getItems());
    children.addAll(
        client.configMaps().inNamespace(NS).withLabel(Labels.JOB, name).list().getItems());
    children.addAll(
        client.apps().deployments().inNamespace(NS).withLabel(Labels.JOB, name).list().getItems());
    children.addAll(
        client.services().inNamespace(NS).withLabel(Labels.JOB, name).list().getItems());
    return children;
  }

  /** What Kubernetes' garbage collector does after the owner with {@code uid} is gone. */
  private void collectGarbage(String uid) {
    for (HasMetadata child : childrenOf("gone")) {
      boolean orphaned =
          child.getMetadata().getOwnerReferences().stream().anyMatch(o -> uid.equals(o.getUid()));
      if (orphaned) {
        client.resource(child).delete();
      }
    }
  }

  /** Every request the operator made is allowed by the ClusterRole/Role in manifests/. */
  @AfterAll
  static void operatorStaysWithinItsRbac() throws Exception {
    Set<String> allowed = new HashSet<>();
    for (JsonNode doc :
        TestResources.YAML
            .readerFor(JsonNode.class)
            .<JsonNode>readValues(TestResources.repoRoot().resolve("manifests/rbac.yaml").toFile())
            .readAll()) {
      String kind = doc.path("kind").asText();
      if (!kind.equals("ClusterRole") && !kind.equals("Role")) {
        continue;
      }
      for (JsonNode rule : doc.path("rules")) {
        for (JsonNode group : rule.path("apiGroups")) {
          for (JsonNode resource : rule.path("resources")) {
            for (JsonNode verb : rule.path("verbs")) {
              allowed.add(group.asText() + "|" + resource.asText() + "|" + verb.asText());
            }
          }
        }
      }
    }
    assertThat(allowed).noneMatch(a -> a.contains("|secrets|"));
    assertThat(OPERATOR_REQUESTS).as("requests recorded from the operator").isNotEmpty();
    for (ApiRequest request : OPERATOR_REQUESTS) {
      assertThat(allowed)
          .as("RBAC rule for %s %s (%s)", request.verb(), request.resource(), request.path())
          .contains(request.group() + "|" + request.resource() + "|" + request.verb());
    }
  }

  // --- helpers ---------------------------------------------------------------------------

  /** The trainer's line after a committed checkpoint (docs/trainer.md). */
  private static String checkpointLine(String job, long step, double evalLoss) {
    return String.format(
        java.util.Locale.ROOT,
        "{\"event\":\"checkpoint\",\"step\":%d,\"uri\":\"s3://checkpoints/%s/step-%09d/\","
            + "\"time\":\"2025-01-07T10:%02d:00.250Z\",\"metrics\":{\"eval_loss\":%s}}",
        step,
        job,
        step,
        step / 60,
        evalLoss);
  }

  private static String resumeLine(String job, long step) {
    return String.format(
        java.util.Locale.ROOT,
        "{\"event\":\"resume\",\"step\":%d,\"uri\":\"s3://checkpoints/%s/step-%09d/\"}",
        step,
        job,
        step);
  }

  private static long latestStep(FineTuneJobStatus status) {
    return status.latestCheckpoint == null ? -1 : status.latestCheckpoint.step;
  }

  private static List<Long> steps(List<io.kubetune.api.v1alpha1.CheckpointRecord> records) {
    return records == null ? List.of() : records.stream().map(r -> r.step).toList();
  }

  private FineTuneJob create(FineTuneJob cr) {
    cr.getMetadata().setUid(null);
    cr.getMetadata().setGeneration(null);
    cr.getMetadata().setNamespace(NS);
    return client.resource(cr).create();
  }

  private FineTuneJob get(FineTuneJob cr) {
    return client
        .resources(FineTuneJob.class)
        .inNamespace(NS)
        .withName(cr.getMetadata().getName())
        .get();
  }

  /**
   * Edits the spec as a user would, retrying when the operator's status write got in between (409:
   * the edit is computed against a newer resourceVersion, never merged blindly).
   */
  private void edit(FineTuneJob cr, java.util.function.Consumer<FineTuneJob> change) {
    await()
        .atMost(Duration.ofSeconds(10))
        .ignoreExceptionsMatching(
            e ->
                e instanceof io.fabric8.kubernetes.client.KubernetesClientException k
                    && k.getCode() == 409)
        .until(
            () -> {
              client
                  .resources(FineTuneJob.class)
                  .inNamespace(NS)
                  .withName(cr.getMetadata().getName())
                  .edit(
                      c -> {
                        change.accept(c);
                        return c;
                      });
              return true;
            });
  }

  /**
   * Waits until the operator has reached a fixed point: a reconcile found nothing to write. Writes
   * of earlier reconciles (status, Events) have all been sent by then.
   */
  private void awaitSettled() {
    double before = unchangedReconciles();
    await().atMost(Duration.ofSeconds(10)).until(() -> unchangedReconciles() > before);
  }

  private Job awaitJob(FineTuneJob cr) {
    String name = cr.getMetadata().getName() + "-train";
    await().atMost(Duration.ofSeconds(10)).until(() -> kubelet.job(NS, name) != null);
    return kubelet.job(NS, name);
  }

  private FineTuneJobStatus awaitStatus(FineTuneJob cr, Predicate<FineTuneJobStatus> condition) {
    await()
        .atMost(Duration.ofSeconds(10))
        .alias("status of " + cr.getMetadata().getName())
        .until(
            () -> {
              FineTuneJob current = get(cr);
              return current != null
                  && current.getStatus() != null
                  && condition.test(current.getStatus());
            });
    return get(cr).getStatus();
  }

  private List<String> eventReasons(FineTuneJob cr) {
    return client.v1().events().inNamespace(NS).list().getItems().stream()
        .filter(e -> cr.getMetadata().getName().equals(e.getInvolvedObject().getName()))
        .map(Event::getReason)
        .toList();
  }

  private Event awaitEvent(FineTuneJob cr, String reason) {
    await()
        .atMost(Duration.ofSeconds(10))
        .alias(reason + " event of " + cr.getMetadata().getName())
        .until(() -> eventReasons(cr).contains(reason));
    return client.v1().events().inNamespace(NS).list().getItems().stream()
        .filter(e -> cr.getMetadata().getName().equals(e.getInvolvedObject().getName()))
        .filter(e -> reason.equals(e.getReason()))
        .findFirst()
        .orElseThrow();
  }

  private List<ApiRequest> drainRequests() {
    List<ApiRequest> drained = new ArrayList<>();
    try {
      RecordedRequest request;
      while ((request = server.takeRequest(1, TimeUnit.MILLISECONDS)) != null) {
        if (OPERATOR_AGENT.equals(request.getHeader("User-Agent"))) {
          ApiRequest parsed = ApiRequest.parse(request.getMethod(), request.getPath());
          drained.add(parsed);
          OPERATOR_REQUESTS.add(parsed);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return drained;
  }

  private static List<ApiRequest> operatorWrites(List<ApiRequest> requests) {
    return requests.stream().filter(ApiRequest::isWrite).toList();
  }

  private double unchangedReconciles() {
    var counter = meters.find("kubetune.reconciles").tag("outcome", "unchanged").counter();
    return counter == null ? 0 : counter.count();
  }
}
