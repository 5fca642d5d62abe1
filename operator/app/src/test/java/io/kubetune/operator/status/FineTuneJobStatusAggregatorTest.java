package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.fabric8.kubernetes.api.model.batch.v1.JobConditionBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.JobStatusBuilder;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.Names;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.TrainingJobBuilder;
import io.kubetune.operator.model.TrainingRevision;
import io.kubetune.operator.validation.FineTuneJobValidator;
import io.kubetune.operator.validation.ValidationProblem;
import java.util.List;
import org.junit.jupiter.api.Test;

class FineTuneJobStatusAggregatorTest {
  static final String T0 = "2026-11-24T10:00:00Z";
  static final String T1 = "2026-11-24T10:05:00Z";

  final FineTuneJob cr = TestResources.minimal("agg");
  final Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, OperatorSettings.defaults()));

  @Test
  void invalidSpecWithoutJobFailsWithTheFieldInTheMessage() {
    cr.getSpec().dataset.validation = "s3://data/val.jsonl";
    List<ValidationProblem> problems = FineTuneJobValidator.validate(cr);
    FineTuneJobStatus status = training(cr, problems, TrainingObservation.none(), T0);
    assertThat(status.phase).isEqualTo(Phase.Failed);
    assertThat(status.observedGeneration).isEqualTo(1L);
    Condition validated = Conditions.find(status.conditions, Conditions.VALIDATED);
    assertThat(validated.getStatus()).isEqualTo("False");
    assertThat(validated.getReason()).isEqualTo("InvalidSpec");
    assertThat(validated.getMessage()).contains("spec.dataset.validationSplit").contains("fix:");
    assertThat(Conditions.find(status.conditions, Conditions.FAILED).getReason())
        .isEqualTo("InvalidSpec");
    assertThat(status.jobName).isNull();
  }

  @Test
  void noJobYetIsPending() {
    FineTuneJobStatus status = compute(null, List.of(), T0);
    assertThat(status.phase).isEqualTo(Phase.Pending);
    assertThat(Conditions.isTrue(status.conditions, Conditions.VALIDATED)).isTrue();
    assertThat(status.trainingRevision).isNotBlank();
    assertThat(status.conditions)
        .extracting(Condition::getType)
        .containsExactly("Validated", "Running", "Complete", "Failed", "Ready");
  }

  @Test
  void jobWithoutRunningPodIsQueuedWithThePodsReason() {
    Pod pending =
        pod("agg-train-abc", "Pending")
            .editStatus()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewWaiting()
            .withReason("ImagePullBackOff")
            .withMessage("pull access denied")
            .endWaiting()
            .endState()
            .endContainerStatus()
            .endStatus()
            .build();
    FineTuneJobStatus status = compute(job, List.of(pending), T0);
    assertThat(status.phase).isEqualTo(Phase.Queued);
    assertThat(status.message).contains("ImagePullBackOff").contains("pull access denied");
    assertThat(status.jobName).isEqualTo("agg-train");
  }

  @Test
  void runningPodMakesItRunningAndConditionTimesStickUntilAFlip() {
    Pod running = pod("agg-train-abc", "Running").build();
    job.setStatus(new JobStatusBuilder().withActive(1).withStartTime(T0).build());
    FineTuneJobStatus first = compute(job, List.of(running), T0);
    assertThat(first.phase).isEqualTo(Phase.Running);
    assertThat(first.startTime).isEqualTo(T0);
    assertThat(first.attempts).isEqualTo(1);
    assertThat(Conditions.find(first.conditions, Conditions.RUNNING).getLastTransitionTime())
        .isEqualTo(T0);

    cr.setStatus(first);
    FineTuneJobStatus again = compute(job, List.of(running), T1);
    assertThat(again).usingRecursiveComparison().isEqualTo(first);

    job.setStatus(
        new JobStatusBuilder()
            .withSucceeded(1)
            .withStartTime(T0)
            .withCompletionTime(T1)
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    cr.setStatus(again);
    FineTuneJobStatus done = compute(job, List.of(pod("agg-train-abc", "Succeeded").build()), T1);
    assertThat(done.phase).isEqualTo(Phase.Succeeded);
    assertThat(done.completionTime).isEqualTo(T1);
    assertThat(Conditions.find(done.conditions, Conditions.RUNNING).getLastTransitionTime())
        .isEqualTo(T1);
    assertThat(Conditions.find(done.conditions, Conditions.VALIDATED).getLastTransitionTime())
        .isEqualTo(T0);
    assertThat(Conditions.isTrue(done.conditions, Conditions.COMPLETE)).isTrue();
    assertThat(Conditions.isTrue(done.conditions, Conditions.READY)).isTrue();
  }

  @Test
  void badInputExitExplainsTheFailureWithTheTrainersMessage() {
    Pod failed =
        pod("agg-train-abc", "Failed")
            .editStatus()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(2)
            .withReason("Error")
            .withFinishedAt(T1)
            .withMessage(
                "{\"reason\":\"BadInput\",\"message\":\"train.jsonl line 7: missing field"
                    + " 'completion'; fix the record or set dataset.fields.completion\"}")
            .endTerminated()
            .endState()
            .endContainerStatus()
            .endStatus()
            .build();
    job.setStatus(
        new JobStatusBuilder()
            .withFailed(1)
            .withConditions(
                new JobConditionBuilder()
                    .withType("Failed")
                    .withStatus("True")
                    .withReason("PodFailurePolicy")
                    .withMessage(
                        "Container trainer for pod default/agg-train-abc failed with exit code 2")
                    .build())
            .build());
    FineTuneJobStatus status = compute(job, List.of(failed), T1);
    assertThat(status.phase).isEqualTo(Phase.Failed);
    Condition failedCondition = Conditions.find(status.conditions, Conditions.FAILED);
    assertThat(failedCondition.getStatus()).isEqualTo("True");
    assertThat(failedCondition.getReason()).isEqualTo("BadInput");
    assertThat(status.message).contains("train.jsonl line 7").contains("exit code 2");
  }

  @Test
  void lossNotFiniteAndOomHaveTheirOwnReasons() {
    assertThat(reasonForExit(3, "Error")).isEqualTo("LossNotFinite");
    assertThat(reasonForExit(5, "Error")).isEqualTo("StorageFull");
    assertThat(reasonForExit(137, "OOMKilled")).isEqualTo("OOMKilled");
    assertThat(reasonForExit(1, "Error")).isNull();
  }

  @Test
  void aSucceededPodBeforeTheJobCompletesIsNotReportedAsQueued() {
    job.setStatus(new JobStatusBuilder().withSucceeded(1).build());
    FineTuneJobStatus status = compute(job, List.of(pod("agg-train-abc", "Succeeded").build()), T0);
    assertThat(status.phase).isEqualTo(Phase.Running);
    assertThat(status.message).contains("waiting for the Job to complete");
  }

  /**
   * Kubernetes' Job controller counts a failed pod a moment after it failed (first FailureTarget
   * when the Job fails, then the count, then Failed): the run neither flickers back to Queued nor
   * reports a failure before the Job decided; a retry it decided on is Queued with the reason.
   */
  @Test
  void aFailedPodIsReportedAsTheJobControllerDecidesAboutIt() {
    Pod failed = exited("agg-train-abc", 2, "{\"reason\":\"BadInput\",\"message\":\"line 3\"}");
    job.setStatus(new JobStatusBuilder().withActive(0).build());
    FineTuneJobStatus undecided = compute(job, List.of(failed), T1);
    assertThat(undecided.phase).isEqualTo(Phase.Running);
    assertThat(undecided.message).contains("agg-train-abc failed; waiting for the Job");
    assertThat(Conditions.isTrue(undecided.conditions, Conditions.FAILED)).isFalse();

    JobCondition reason =
        new JobConditionBuilder()
            .withStatus("True")
            .withReason("PodFailurePolicy")
            .withMessage("Container trainer for pod default/agg-train-abc failed with exit code 2")
            .build();
    job.setStatus(
        new JobStatusBuilder()
            .withConditions(new JobConditionBuilder(reason).withType("FailureTarget").build())
            .build());
    FineTuneJobStatus failing = compute(job, List.of(failed), T1);
    job.setStatus(
        new JobStatusBuilder()
            .withFailed(1)
            .withConditions(
                new JobConditionBuilder(reason).withType("FailureTarget").build(),
                new JobConditionBuilder(reason).withType("Failed").build())
            .build());
    FineTuneJobStatus finished = compute(job, List.of(failed), T1);
    assertThat(failing.phase).isEqualTo(Phase.Failed);
    assertThat(Conditions.find(failing.conditions, Conditions.FAILED).getReason())
        .isEqualTo("BadInput");
    assertThat(failing).usingRecursiveComparison().isEqualTo(finished);

    Pod retryable = exited("agg-train-abd", 1, "{\"message\":\"connection refused\"}");
    job.setStatus(new JobStatusBuilder().withFailed(1).build());
    FineTuneJobStatus retry = compute(job, List.of(retryable), T1);
    assertThat(retry.phase).isEqualTo(Phase.Queued);
    assertThat(retry.message)
        .isEqualTo(
            "pod agg-train-abd failed (trainer exited with code 1: connection refused); the Job"
                + " starts another attempt after its back-off");
  }

  private static Pod exited(String name, int exitCode, String terminationMessage) {
    return pod(name, "Failed")
        .editStatus()
        .addNewContainerStatus()
        .withName(Names.TRAINER_CONTAINER)
        .withNewState()
        .withNewTerminated()
        .withExitCode(exitCode)
        .withReason("Error")
        .withFinishedAt(T1)
        .withMessage(terminationMessage)
        .endTerminated()
        .endState()
        .endContainerStatus()
        .endStatus()
        .build();
  }

  @Test
  void suspendedJobWithoutPodsIsSuspended() {
    cr.getSpec().suspend = true;
    job.getSpec().setSuspend(true);
    FineTuneJobStatus status = compute(job, List.of(), T0);
    assertThat(status.phase).isEqualTo(Phase.Suspended);
    assertThat(status.message).contains("spec.suspend: false");
  }

  @Test
  void suspendedByKueueWithoutUserRequestIsQueued() {
    job.getSpec().setSuspend(true);
    FineTuneJobStatus status = compute(job, List.of(), T0);
    assertThat(status.phase).isEqualTo(Phase.Queued);
    assertThat(status.message).contains("admission");
  }

  @Test
  void finishedRunStaysFinishedWhenItsJobIsGarbageCollected() {
    job.setStatus(
        new JobStatusBuilder()
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    FineTuneJobStatus done = compute(job, List.of(), T0);
    cr.setStatus(done);
    FineTuneJobStatus afterTtl = compute(null, List.of(), T1);
    assertThat(afterTtl.phase).isEqualTo(Phase.Succeeded);
    assertThat(afterTtl.conditions).isEqualTo(done.conditions);
  }

  @Test
  void newRevisionResetsRunFields() {
    job.setStatus(new JobStatusBuilder().withActive(1).withStartTime(T0).build());
    FineTuneJobStatus running = compute(job, List.of(pod("agg-train-abc", "Running").build()), T0);
    cr.setStatus(running);
    cr.getSpec().restartNonce = "2";
    FineTuneJobStatus replacing =
        training(cr, List.of(), new TrainingObservation(job, List.of(), true), T1);
    assertThat(replacing.phase).isEqualTo(Phase.Pending);
    assertThat(replacing.message).contains("replacing");
    assertThat(replacing.startTime).isNull();
    assertThat(replacing.attempts).isNull();
    assertThat(replacing.trainingRevision).isNotEqualTo(running.trainingRevision);
  }

  @Test
  void checkpointLinesFillTheLedgerAndANewRevisionStartsItEmpty() {
    job.setStatus(new JobStatusBuilder().withActive(1).withStartTime(T0).build());
    Pod running = pod("agg-train-abc", "Running").build();
    String log =
        "{\"event\":\"checkpoint\",\"step\":100,\"uri\":\"s3://checkpoints/agg/step-000000100/\","
            + "\"metrics\":{\"eval_loss\":1.2}}\n";
    FineTuneJobStatus first =
        training(cr, List.of(), new TrainingObservation(job, List.of(running), false, log), T0);
    assertThat(first.checkpoints).extracting(r -> r.step).containsExactly(100L);
    assertThat(first.latestCheckpoint.uri).isEqualTo("s3://checkpoints/agg/step-000000100/");
    assertThat(first.latestCheckpoint.time).isEqualTo(T0);
    assertThat(first.bestCheckpoint.step).isEqualTo(100L);

    // Re-reading the same log later changes nothing (no status write).
    cr.setStatus(first);
    FineTuneJobStatus again =
        training(cr, List.of(), new TrainingObservation(job, List.of(running), false, log), T1);
    assertThat(again).usingRecursiveComparison().isEqualTo(first);

    // A log without checkpoint lines (or none read) keeps the ledger.
    FineTuneJobStatus unread = compute(job, List.of(running), T1);
    assertThat(unread.latestCheckpoint.step).isEqualTo(100L);

    cr.getSpec().restartNonce = "2";
    FineTuneJobStatus replacing =
        training(cr, List.of(), new TrainingObservation(job, List.of(), true), T1);
    assertThat(replacing.checkpoints).isNull();
    assertThat(replacing.latestCheckpoint).isNull();
    assertThat(replacing.bestCheckpoint).isNull();
  }

  @Test
  void aResumeThatSkippedACorruptCheckpointIsRecordedAndLatestIsTheResumedOne() {
    job.setStatus(new JobStatusBuilder().withActive(1).withStartTime(T0).build());
    Pod first = pod("agg-train-a", "Running").build();
    String committed =
        "{\"event\":\"checkpoint\",\"step\":40,\"uri\":\"s3://checkpoints/agg/step-000000040/\","
            + "\"time\":\"2026-11-24T09:00:00Z\"}\n"
            + "{\"event\":\"checkpoint\",\"step\":50,\"uri\":\"s3://checkpoints/agg/step-000000050/\","
            + "\"time\":\"2026-11-24T09:10:00Z\"}\n";
    cr.setStatus(
        training(
            cr, List.of(), new TrainingObservation(job, List.of(first), false, committed), T0));
    assertThat(cr.getStatus().latestCheckpoint.step).isEqualTo(50L);

    Pod second = pod("agg-train-b", "Running").build();
    String resumed =
        "{\"event\":\"resume\",\"step\":40,\"uri\":\"s3://checkpoints/agg/step-000000040/\","
            + "\"time\":\"2026-11-24T09:00:00Z\",\"skipped\":[{\"step\":50,"
            + "\"uri\":\"s3://checkpoints/agg/step-000000050/\",\"reason\":\"checksum mismatch\"}]}\n"
            + "{\"event\":\"warning\",\"reason\":\"CheckpointFailed\",\"step\":60,"
            + "\"consecutiveFailures\":1,\"lastCheckpointStep\":40,\"message\":\"store down\"}\n";
    FineTuneJobStatus after =
        training(
            cr,
            List.of(),
            new TrainingObservation(job, List.of(first, second), false, resumed),
            T1);
    assertThat(after.latestCheckpoint.step).isEqualTo(40L);
    assertThat(after.checkpoints)
        .extracting(r -> r.step + ":" + r.rejected)
        .containsExactly("40:null", "50:checksum mismatch");
    assertThat(after.checkpointWarnings)
        .extracting(w -> w.reason + "@" + w.step + "@" + w.time)
        .containsExactly("CheckpointSkipped@50@" + T1, "CheckpointFailed@60@" + T1);
    assertThat(after.checkpointWarnings.get(0).message)
        .contains("checksum mismatch")
        .contains("resumed from step 40");

    // Re-reading the same tail later changes nothing (no status write).
    cr.setStatus(after);
    FineTuneJobStatus again =
        training(
            cr,
            List.of(),
            new TrainingObservation(job, List.of(first, second), false, resumed),
            "2026-11-24T10:10:00Z");
    assertThat(again).usingRecursiveComparison().isEqualTo(after);

    // A new run forgets them.
    cr.getSpec().restartNonce = "2";
    FineTuneJobStatus replacing =
        training(cr, List.of(), new TrainingObservation(job, List.of(), true), T1);
    assertThat(replacing.checkpointWarnings).isNull();
  }

  @Test
  void aPreemptedPodIsExplainedAsAnInterruptionNotAFailure() {
    Pod preempted =
        pod("agg-train-abc", "Failed")
            .editStatus()
            .addNewCondition()
            .withType("DisruptionTarget")
            .withStatus("True")
            .withReason("PreemptionByScheduler")
            .endCondition()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(4)
            .endTerminated()
            .endState()
            .endContainerStatus()
            .endStatus()
            .build();
    job.setStatus(new JobStatusBuilder().withActive(0).withFailed(0).build());
    FineTuneJobStatus status = compute(job, List.of(preempted), T0);
    assertThat(status.phase).isEqualTo(Phase.Queued);
    assertThat(status.message)
        .contains("agg-train-abc was disrupted (PreemptionByScheduler)")
        .contains("resumes from the latest checkpoint");

    Pod exited4 =
        pod("agg-train-abd", "Failed")
            .editStatus()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(4)
            .endTerminated()
            .endState()
            .endContainerStatus()
            .endStatus()
            .build();
    assertThat(PodFacts.interruption(exited4)).get().asString().contains("code 4");

    // The next attempt fails with bad input in the same second: its reason is the one reported.
    Pod badInput =
        pod("agg-train-abe", "Failed")
            .editStatus()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(2)
            .withFinishedAt(T0)
            .endTerminated()
            .endState()
            .endContainerStatus()
            .endStatus()
            .build();
    exited4.getStatus().getContainerStatuses().get(0).getState().getTerminated().setFinishedAt(T0);
    job.setStatus(
        new JobStatusBuilder()
            .withFailed(1)
            .withConditions(
                new JobConditionBuilder()
                    .withType("Failed")
                    .withStatus("True")
                    .withReason("PodFailurePolicy")
                    .build())
            .build());
    FineTuneJobStatus failed = compute(job, List.of(exited4, badInput), T0);
    assertThat(failed.phase).isEqualTo(Phase.Failed);
    assertThat(Conditions.find(failed.conditions, Conditions.FAILED).getReason())
        .isEqualTo("BadInput");
  }

  @Test
  void successRecordsTheAdapterAndAFailedGateBlocksPromotion() {
    cr.getSpec().serving = new io.kubetune.api.v1alpha1.ServingSpec();
    cr.getSpec().serving.enabled = true;
    cr.getSpec().serving.gate = new io.kubetune.api.v1alpha1.GateSpec();
    cr.getSpec().serving.gate.metric = io.kubetune.api.v1alpha1.EvalMetric.EVAL_LOSS;
    cr.getSpec().serving.gate.threshold = 0.5;
    job.setStatus(
        new JobStatusBuilder()
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    Pod finished =
        pod("agg-train-abc", "Succeeded")
            .editStatus()
            .addNewContainerStatus()
            .withName(Names.TRAINER_CONTAINER)
            .withNewState()
            .withNewTerminated()
            .withExitCode(0)
            .withMessage(
                "{\"reason\":\"Completed\",\"format\":\"peft-lora\",\"digest\":\"abc123\","
                    + "\"baseMetrics\":{\"eval_loss\":1.6},\"tunedMetrics\":{\"eval_loss\":0.71}}")
            .endTerminated()
            .endState()
            .endContainerStatus()
            .endStatus()
            .build();
    FineTuneJobStatus status = compute(job, List.of(finished), T0);

    assertThat(status.phase).isEqualTo(Phase.Succeeded);
    assertThat(status.adapter.uri).isEqualTo(runExport());
    assertThat(status.adapter.format).isEqualTo("peft-lora");
    assertThat(status.adapter.digest).isEqualTo("abc123");
    assertThat(status.adapter.tunedMetrics).containsEntry("eval_loss", 0.71);
    Condition promoted = Conditions.find(status.conditions, Conditions.PROMOTED);
    assertThat(promoted.getStatus()).isEqualTo("False");
    assertThat(promoted.getReason()).isEqualTo("QualityGateFailed");
    assertThat(promoted.getMessage()).contains("0.7100").contains("0.5000").contains("base 1.6000");
    assertThat(Conditions.isTrue(status.conditions, Conditions.COMPLETE)).isTrue();

    // The pods are garbage-collected later: the adapter record stays.
    cr.setStatus(status);
    FineTuneJobStatus later = compute(job, List.of(), T1);
    assertThat(later.adapter).usingRecursiveComparison().isEqualTo(status.adapter);
  }

  @Test
  void noPromotedConditionWithoutServing() {
    job.setStatus(
        new JobStatusBuilder()
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    FineTuneJobStatus status = compute(job, List.of(), T0);
    assertThat(Conditions.find(status.conditions, Conditions.PROMOTED)).isNull();
    assertThat(status.adapter.uri).isEqualTo(runExport());
  }

  /** This run's export folder: checkpoints.uri + final/ + the training revision. */
  private String runExport() {
    return "s3://checkpoints/agg/final/" + TrainingRevision.of(cr) + "/";
  }

  private FineTuneJobStatus compute(Job job, List<Pod> pods, String now) {
    return training(cr, List.of(), new TrainingObservation(job, pods, false), now);
  }

  private static String reasonForExit(int code, String reason) {
    return PodFacts.reasonForExit(
        new io.fabric8.kubernetes.api.model.ContainerStateTerminatedBuilder()
            .withExitCode(code)
            .withReason(reason)
            .build());
  }

  private static PodBuilder pod(String name, String phase) {
    return new PodBuilder()
        .withNewMetadata()
        .withName(name)
        .withNamespace("default")
        .endMetadata()
        .withNewStatus()
        .withPhase(phase)
        .endStatus();
  }

  /** The training part of the status, as the aggregator assembles it before serving is folded. */
  private static FineTuneJobStatus training(
      FineTuneJob cr, List<ValidationProblem> problems, TrainingObservation observed, String now) {
    FineTuneJobModel model =
        problems.isEmpty() ? FineTuneJobModel.from(cr, OperatorSettings.defaults()) : null;
    return FineTuneJobStatusAggregator.training(cr, model, problems, observed, now);
  }

  @Test
  void phaseServingNeedsTheRunToHaveSucceeded() {
    io.kubetune.operator.serving.ServingOutcome serving =
        new io.kubetune.operator.serving.ServingOutcome(
            new io.kubetune.api.v1alpha1.ServingStatus(),
            new io.kubetune.operator.serving.ServingOutcome.Verdict(true, "Serving", "serving a"),
            null,
            "serving a at http://x",
            new io.kubetune.operator.serving.ServingOutcome.Workload.Unchanged(),
            null);
    FineTuneJobStatus succeeded = new FineTuneJobStatus();
    succeeded.phase = Phase.Succeeded;
    FineTuneJobStatusAggregator.foldServing(succeeded, serving, 1L, "t");
    assertThat(succeeded.phase).isEqualTo(Phase.Serving);
    assertThat(succeeded.message).isEqualTo("serving a at http://x");

    // A new run is pending while the previous adapter serves: the phase is the run's, or the
    // operator would read the new revision as finished and never create its Job.
    FineTuneJobStatus pending = new FineTuneJobStatus();
    pending.phase = Phase.Pending;
    pending.message = "waiting";
    FineTuneJobStatusAggregator.foldServing(pending, serving, 1L, "t");
    assertThat(pending.phase).isEqualTo(Phase.Pending);
    assertThat(pending.message).isEqualTo("waiting");
    assertThat(Conditions.isTrue(pending.conditions, Conditions.SERVING)).isTrue();
  }
}
