package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ContainerStateBuilder;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobConditionBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.JobStatusBuilder;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.Names;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.TrainingJobBuilder;
import io.kubetune.operator.serving.ServingOutcome;
import io.kubetune.operator.validation.FineTuneJobValidator;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The aggregator is the one writer: it folds what serving decided into the training status. */
class ServingFoldTest {
  static final OperatorSettings SETTINGS = OperatorSettings.defaults();
  static final String T0 = "2026-11-24T10:00:00Z";
  static final String T1 = "2026-11-24T10:00:30Z";

  final FineTuneJob cr = servingJob();
  final FineTuneJobModel model = FineTuneJobModel.from(cr, SETTINGS);
  final Job job = succeeded(TrainingJobBuilder.build(model));
  final List<Pod> pods = List.of(trainerExited0("d1"));

  @Test
  void aServedAdapterMakesThePhaseServingAndReadyTrue() {
    // Reconcile 1: the intent is recorded, nothing is run yet.
    var intent = assess(null, T0);
    assertThat(intent.serving().orElseThrow().workload())
        .isInstanceOf(ServingOutcome.Workload.Unchanged.class);
    assertThat(intent.status().phase).isEqualTo(Phase.Succeeded);
    assertThat(intent.status().serving.rollout.adapterDigest).isEqualTo("d1");
    assertThat(Conditions.find(intent.status().conditions, Conditions.READY).getReason())
        .isEqualTo("RollingOut");
    cr.setStatus(intent.status());

    // Reconcile 2: the Deployment to run, built once, is in the outcome.
    var rollout = assess(null, T0);
    var run = (ServingOutcome.Workload.Run) rollout.serving().orElseThrow().workload();
    assertThat(run.adapter().digest()).isEqualTo("d1");
    assertThat(run.deployment().getMetadata().getName()).isEqualTo(model.servingDeploymentName());
    cr.setStatus(rollout.status());

    // Reconcile 3: its pods are ready.
    Deployment ready = run.deployment();
    ready.setStatus(
        new DeploymentStatusBuilder()
            .withReplicas(1)
            .withUpdatedReplicas(1)
            .withReadyReplicas(1)
            .withAvailableReplicas(1)
            .build());
    FineTuneJobStatus served = assess(ready, T1).status();
    assertThat(served.phase).isEqualTo(Phase.Serving);
    assertThat(served.message)
        .startsWith("serving s3://checkpoints/fold/final/" + model.trainingRevision() + "/");
    assertThat(Conditions.isTrue(served.conditions, Conditions.READY)).isTrue();
    assertThat(Conditions.isTrue(served.conditions, Conditions.SERVING)).isTrue();
    // Training's own conditions are untouched by serving.
    assertThat(Conditions.isTrue(served.conditions, Conditions.COMPLETE)).isTrue();
  }

  @Test
  void servingOffRemovesServingFactsAndLeavesReadyToTraining() {
    cr.getSpec().serving.enabled = false;
    var off = assess(null, T0);
    assertThat(off.serving().orElseThrow().deleteServing()).isTrue();
    assertThat(off.status().serving).isNull();
    assertThat(Conditions.find(off.status().conditions, Conditions.SERVING)).isNull();
    assertThat(Conditions.find(off.status().conditions, Conditions.READY).getReason())
        .isEqualTo("TrainingSucceeded");
  }

  @Test
  void anInvalidSpecDecidesNoServing() {
    FineTuneJobStatus before = assess(null, T0).status();
    cr.setStatus(before);
    cr.getSpec().dataset.validation = "s3://data/val.jsonl"; // together with validationSplit
    var problems = FineTuneJobValidator.validate(cr);
    assertThat(problems).isNotEmpty();
    var invalid =
        FineTuneJobStatusAggregator.assess(
            cr, null, problems, new TrainingObservation(job, pods, false), null, T1);
    assertThat(invalid.serving()).isEmpty();
    assertThat(invalid.status().serving).usingRecursiveComparison().isEqualTo(before.serving);
  }

  private FineTuneJobStatusAggregator.Assessment assess(Deployment deployment, String now) {
    return FineTuneJobStatusAggregator.assess(
        cr,
        FineTuneJobModel.from(cr, SETTINGS),
        List.of(),
        new TrainingObservation(job, pods, false),
        deployment,
        now);
  }

  private static FineTuneJob servingJob() {
    FineTuneJob cr = TestResources.minimal("fold");
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.enabled = true;
    return cr;
  }

  private static Job succeeded(Job job) {
    job.setStatus(
        new JobStatusBuilder()
            .withSucceeded(1)
            .withConditions(
                new JobConditionBuilder().withType("Complete").withStatus("True").build())
            .build());
    return job;
  }

  private static Pod trainerExited0(String digest) {
    return new PodBuilder()
        .withNewMetadata()
        .withName("fold-train-a")
        .withCreationTimestamp(T0)
        .endMetadata()
        .withNewStatus()
        .withPhase("Succeeded")
        .withContainerStatuses(
            new ContainerStatusBuilder()
                .withName(Names.TRAINER_CONTAINER)
                .withState(
                    new ContainerStateBuilder()
                        .withNewTerminated()
                        .withExitCode(0)
                        .withMessage(
                            "{\"reason\":\"Completed\",\"format\":\"peft-lora\",\"digest\":\""
                                + digest
                                + "\"}")
                        .endTerminated()
                        .build())
                .build())
        .endStatus()
        .build();
  }
}
