package io.kubetune.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobConditionBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.JobStatusBuilder;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.model.TrainingJobPlan.Action;
import org.junit.jupiter.api.Test;

class TrainingJobPlanTest {
  final FineTuneJob cr = TestResources.minimal("plan");
  final OperatorSettings settings = OperatorSettings.defaults();

  @Test
  void createsTheJobWhenMissing() {
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), null))
        .isEqualTo(Action.CREATE);
  }

  @Test
  void doesNotRecreateAJobOfAFinishedRun() {
    cr.setStatus(new FineTuneJobStatus());
    cr.getStatus().trainingRevision = TrainingRevision.of(cr);
    cr.getStatus().phase = Phase.Succeeded;
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), null))
        .isEqualTo(Action.NONE);
    cr.getStatus().phase = Phase.Failed;
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), null))
        .isEqualTo(Action.NONE);
    // A manually deleted Job of a running run comes back: the trainer resumes from checkpoints.
    cr.getStatus().phase = Phase.Running;
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), null))
        .isEqualTo(Action.CREATE);
  }

  @Test
  void unchangedJobNeedsNothing() {
    Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, settings));
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.NONE);
  }

  @Test
  void newRevisionReplacesTheJob() {
    Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, settings));
    cr.getSpec().restartNonce = "again";
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.REPLACE);
    job.getMetadata().setDeletionTimestamp("2026-01-01T00:00:00Z");
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.WAIT_FOR_DELETION);
  }

  @Test
  void aKueueManagedJobIsNeverUnsuspendedByTheOperator() {
    cr.getMetadata()
        .setLabels(new java.util.HashMap<>(java.util.Map.of("kueue.x-k8s.io/queue-name", "gpu")));
    Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, settings));
    job.getSpec().setSuspend(true); // Kueue's webhook suspended it until admission
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.NONE);
    // Suspending on the user's request still works.
    job.getSpec().setSuspend(false);
    cr.getSpec().suspend = true;
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.SET_SUSPEND);
  }

  @Test
  void newResourcesReplaceTheJobOfARunningRunOnly() {
    Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, settings));
    cr.getSpec().resources = new io.kubetune.api.v1alpha1.ResourcesSpec();
    cr.getSpec().resources.memory = new io.fabric8.kubernetes.api.model.Quantity("32Gi");
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.REPLACE);
    job.setStatus(
        new JobStatusBuilder()
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.NONE);
  }

  @Test
  void suspendIsFlippedInPlaceUnlessTheJobFinished() {
    Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, settings));
    cr.getSpec().suspend = true;
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.SET_SUSPEND);
    job.setStatus(
        new JobStatusBuilder()
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    assertThat(TrainingJobPlan.decide(FineTuneJobModel.from(cr, settings), job))
        .isEqualTo(Action.NONE);
  }
}
