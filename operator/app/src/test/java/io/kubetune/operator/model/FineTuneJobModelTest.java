package io.kubetune.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.kubetune.api.Bounds;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.EarlyStoppingSpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.ResourcesSpec;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.api.v1alpha1.StorageSpec;
import io.kubetune.operator.Labels;
import io.kubetune.operator.TestResources;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** One resolution of a FineTuneJob, and every builder reading the same resolved facts. */
class FineTuneJobModelTest {
  static final OperatorSettings SETTINGS = OperatorSettings.defaults();

  @Test
  void resolvesRevisionNamesAndUrisOnce() {
    FineTuneJob cr = TestResources.minimal("m");
    FineTuneJobModel model = FineTuneJobModel.from(cr, SETTINGS);

    assertThat(model.trainingRevision()).isEqualTo(TrainingRevision.of(cr));
    assertThat(model.runtimeRevision()).isEqualTo(TrainingRevision.runtimeOf(cr));
    assertThat(model.trainingFields()).isEqualTo(TrainingRevision.fieldsOf(cr));
    assertThat(model.trainingJobName()).isEqualTo("m-train");
    assertThat(model.trainerConfigMapName()).isEqualTo("m-trainer-config");
    assertThat(model.servingDeploymentName()).isEqualTo("m-serve");
    assertThat(model.servingEndpoint()).isEqualTo("http://m-serve.default.svc:8000/v1");
    assertThat(model.adapterUri())
        .isEqualTo("s3://checkpoints/m/final/" + model.trainingRevision() + "/");
    assertThat(model.baseModelInPod()).isEqualTo("s3://models/tiny/");
    assertThat(model.trainerClaims()).isEmpty();
  }

  @Test
  void eachTrainingRunExportsIntoItsOwnFolderAndAResumedRunIntoTheSame() {
    FineTuneJob cr = TestResources.minimal("runs");
    String first = FineTuneJobModel.from(cr, SETTINGS).adapterUri();

    // A retrain: only restartNonce changes, checkpoints.uri stays.
    cr.getSpec().restartNonce = "2";
    FineTuneJobModel retrained = FineTuneJobModel.from(cr, SETTINGS);
    assertThat(retrained.adapterUri())
        .startsWith("s3://checkpoints/runs/final/")
        .isNotEqualTo(first)
        .endsWith("/" + retrained.trainingRevision() + "/");

    // The same run after a change of pod resources or serving (the Job is replaced, the trainer
    // resumes from the run's checkpoints): same revision, same export folder.
    cr.getSpec().resources = new ResourcesSpec();
    cr.getSpec().resources.cpu = new Quantity("4");
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.enabled = true;
    cr.getSpec().suspend = true;
    FineTuneJobModel resumed = FineTuneJobModel.from(cr, SETTINGS);
    assertThat(resumed.runtimeRevision()).isNotEqualTo(retrained.runtimeRevision());
    assertThat(resumed.adapterUri()).isEqualTo(retrained.adapterUri());
    assertThat(TrainerConfigModel.from(resumed).output.uri).isEqualTo(retrained.adapterUri());
  }

  @Test
  void appliesDefaultsFromTheOneTable() {
    FineTuneJob cr = TestResources.minimal("d");
    FineTuneJobModel model = FineTuneJobModel.from(cr, SETTINGS);
    assertThat(model.backoffLimit()).isEqualTo(Bounds.BACKOFF_LIMIT_DEFAULT);
    assertThat(model.evaluationMetric()).isEqualTo(EvalMetric.EVAL_LOSS);
    assertThat(model.image()).isEqualTo(SETTINGS.trainerImage());
    assertThat(model.storageRegion()).isNull();
    assertThat(model.servingEnabled()).isFalse();
    assertThat(model.servingReplicas()).isEqualTo(Bounds.REPLICAS_DEFAULT);
    assertThat(model.trainingResources()).isNotNull();

    cr.getSpec().storage = new StorageSpec();
    cr.getSpec().trainerImage = "registry.example/kubetune:dev";
    cr.getSpec().hyperparameters = new HyperparametersSpec();
    cr.getSpec().hyperparameters.earlyStopping = new EarlyStoppingSpec();
    cr.getSpec().hyperparameters.earlyStopping.metric = EvalMetric.ACCURACY;
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.enabled = true;
    cr.getSpec().serving.replicas = 3;
    FineTuneJobModel edited = FineTuneJobModel.from(cr, SETTINGS);
    assertThat(edited.storageRegion()).isEqualTo(Bounds.STORAGE_REGION_DEFAULT);
    assertThat(edited.image()).isEqualTo("registry.example/kubetune:dev");
    assertThat(edited.evaluationMetric()).isEqualTo(EvalMetric.ACCURACY);
    assertThat(edited.servingEnabled()).isTrue();
    assertThat(edited.servingReplicas()).isEqualTo(3);
  }

  @Test
  void pvcUrisBecomeClaimsAndMapBackToTheUsersForm() {
    FineTuneJobModel model =
        FineTuneJobModel.from(TestResources.example("full-finetune-pvc.yaml"), SETTINGS);
    // Read-only for inputs, writable for the checkpoints, one entry per claim.
    assertThat(model.trainerClaims()).containsExactly(Map.entry("model-store", true));
    assertThat(model.adapterUri())
        .isEqualTo(
            "pvc://model-store/checkpoints/chat-full/final/" + model.trainingRevision() + "/");
    String inPod = model.checkpoints().inPod();
    assertThat(model.userCheckpointUris().apply(inPod + "step-000000010/"))
        .isEqualTo("pvc://model-store/checkpoints/chat-full/step-000000010/");
    assertThat(model.userCheckpointUris().apply("s3://elsewhere/x/"))
        .isEqualTo("s3://elsewhere/x/");
  }

  @Test
  void everyBuilderReadsTheSameResolution() {
    FineTuneJobModel model = FineTuneJobModel.from(TestResources.minimal("same"), SETTINGS);
    Job job = TrainingJobBuilder.build(model);
    ConfigMap configMap = TrainerConfigMapBuilder.build(model);
    TrainerConfig config = TrainerConfigModel.from(model);

    assertThat(job.getMetadata().getName()).isEqualTo(model.trainingJobName());
    assertThat(job.getMetadata().getAnnotations())
        .containsEntry(Labels.TRAINING_REVISION_ANNOTATION, model.trainingRevision())
        .containsEntry(Labels.RUNTIME_ANNOTATION, model.runtimeRevision());
    assertThat(configMap.getMetadata().getName()).isEqualTo(model.trainerConfigMapName());
    assertThat(configMap.getMetadata().getAnnotations())
        .containsEntry(Labels.TRAINING_REVISION_ANNOTATION, model.trainingRevision());
    assertThat(config.job.trainingRevision).isEqualTo(model.trainingRevision());
    assertThat(config.output.uri).isEqualTo(model.adapterUri());
    assertThat(config.checkpoints.uri).isEqualTo(model.checkpoints().inPod());
    assertThat(config.evaluation.metric).isEqualTo(model.evaluationMetric());
    assertThat(TrainingJobPlan.decide(model, job)).isEqualTo(TrainingJobPlan.Action.NONE);
  }
}
