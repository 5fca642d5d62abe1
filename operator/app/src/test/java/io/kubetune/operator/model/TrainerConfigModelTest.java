package io.kubetune.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.support.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TrainerConfigModelTest {

  /**
   * The rendered contract for each example is committed in operator/api's test resources, where the
   * trainer's tests read the same files. Regenerate after a deliberate contract change with
   * -Dkubetune.updateFixtures=true.
   */
  @ParameterizedTest
  @ValueSource(strings = {"lora-completion", "support-tickets-classification", "full-finetune-pvc"})
  void renderedContractMatchesTheSharedFixture(String example) throws IOException {
    String rendered =
        Json.pretty(
            TrainerConfigModel.from(
                FineTuneJobModel.from(
                    TestResources.example(example + ".yaml"), OperatorSettings.defaults())));
    Path fixture =
        TestResources.repoRoot()
            .resolve("operator/api/src/test/resources/trainer-config")
            .resolve(example + ".json");
    if (Boolean.getBoolean("kubetune.updateFixtures")) {
      Files.createDirectories(fixture.getParent());
      Files.writeString(fixture, rendered);
    }
    assertThat(fixture).exists();
    assertThat(rendered)
        .as("%s is out of date; rerun with -Dkubetune.updateFixtures=true", fixture)
        .isEqualTo(Files.readString(fixture));
    // And it parses back into the contract type the trainer uses.
    TrainerConfig parsed = Json.mapper().readValue(rendered, TrainerConfig.class);
    assertThat(parsed.apiVersion).isEqualTo(TrainerConfig.API_VERSION);
  }

  @Test
  void everyDefaultIsResolved() {
    TrainerConfig config =
        TrainerConfigModel.from(
            FineTuneJobModel.from(TestResources.minimal("d"), OperatorSettings.defaults()));
    assertThat(config.method.lora.rank).isEqualTo(8);
    assertThat(config.method.lora.alpha).isEqualTo(16.0);
    assertThat(config.method.lora.dropout).isEqualTo(0.05);
    assertThat(config.method.lora.targetModules).containsExactly("q_proj", "v_proj");
    assertThat(config.hyperparameters.epochs).isEqualTo(1);
    assertThat(config.hyperparameters.maxSteps).isNull();
    assertThat(config.hyperparameters.learningRate).isEqualTo(2e-4);
    assertThat(config.hyperparameters.batchSize).isEqualTo(8);
    assertThat(config.hyperparameters.gradientAccumulation).isEqualTo(1);
    assertThat(config.hyperparameters.maxSequenceLength).isEqualTo(512);
    assertThat(config.hyperparameters.seed).isEqualTo(42L);
    assertThat(config.hyperparameters.maxGradNorm).isEqualTo(1.0);
    assertThat(config.checkpoints.everySteps).isEqualTo(100);
    assertThat(config.checkpoints.keepLast).isEqualTo(3);
    assertThat(config.output.uri)
        .isEqualTo("s3://checkpoints/d/final/" + config.job.trainingRevision + "/");
    assertThat(config.evaluation.metric).isEqualTo(EvalMetric.EVAL_LOSS);
    assertThat(config.evaluation.compareWithBase).isTrue();
    assertThat(config.evaluation.generation.maxExamples)
        .isEqualTo(io.kubetune.api.Bounds.GENERATION_MAX_EXAMPLES_DEFAULT);
    assertThat(config.evaluation.generation.maxNewTokens)
        .isEqualTo(io.kubetune.api.Bounds.GENERATION_MAX_NEW_TOKENS_DEFAULT);
    assertThat(config.job.trainingRevision)
        .isEqualTo(TrainingRevision.of(TestResources.minimal("d")));
  }

  @Test
  void exportBestRanksByTheGateMetricUnlessEarlyStoppingNamesOne() {
    io.kubetune.api.v1alpha1.FineTuneJob job = TestResources.minimal("best");
    job.getSpec().serving = new io.kubetune.api.v1alpha1.ServingSpec();
    job.getSpec().serving.gate = new io.kubetune.api.v1alpha1.GateSpec();
    job.getSpec().serving.gate.metric = EvalMetric.BLEU;
    job.getSpec().serving.gate.mustBeatBase = true;
    // Without exportBest the gate does not change what training ranks by.
    assertThat(render(job).evaluation.metric).isEqualTo(EvalMetric.EVAL_LOSS);
    job.getSpec().checkpoints.exportBest = true;
    TrainerConfig config = render(job);
    assertThat(config.evaluation.metric).isEqualTo(EvalMetric.BLEU);
    assertThat(config.checkpoints.exportBest).isTrue();
  }

  @Test
  void classificationHasNoGenerationMetrics() {
    io.kubetune.api.v1alpha1.FineTuneJob job = TestResources.minimal("cls");
    job.getSpec().dataset.format = io.kubetune.api.v1alpha1.DatasetSpec.Format.classification;
    assertThat(render(job).evaluation.generation).isNull();
  }

  private static TrainerConfig render(io.kubetune.api.v1alpha1.FineTuneJob job) {
    return TrainerConfigModel.from(FineTuneJobModel.from(job, OperatorSettings.defaults()));
  }

  @Test
  void maxStepsReplacesTheEpochDefault() {
    FineTuneJob cr = TestResources.minimal("m");
    cr.getSpec().hyperparameters = new io.kubetune.api.v1alpha1.HyperparametersSpec();
    cr.getSpec().hyperparameters.maxSteps = 50;
    TrainerConfig config =
        TrainerConfigModel.from(FineTuneJobModel.from(cr, OperatorSettings.defaults()));
    assertThat(config.hyperparameters.maxSteps).isEqualTo(50);
    assertThat(config.hyperparameters.epochs).isNull();
  }

  @Test
  void pvcUrisBecomeFileUrisUnderTheMountRoot() {
    TrainerConfig config =
        TrainerConfigModel.from(
            FineTuneJobModel.from(
                TestResources.example("full-finetune-pvc.yaml"), OperatorSettings.defaults()));
    assertThat(config.baseModel.uri)
        .isEqualTo("file:///var/run/kubetune/pvc/model-store/llama-tiny/");
    assertThat(config.dataset.train)
        .isEqualTo("file:///var/run/kubetune/pvc/model-store/data/chat-train.jsonl");
    assertThat(config.checkpoints.uri)
        .isEqualTo("file:///var/run/kubetune/pvc/model-store/checkpoints/chat-full/");
    assertThat(config.storage).isNull();
  }

  @Test
  void secretNameNeverReachesTheTrainerDocument() {
    String rendered =
        Json.pretty(
            TrainerConfigModel.from(
                FineTuneJobModel.from(
                    TestResources.example("lora-completion.yaml"), OperatorSettings.defaults())));
    assertThat(rendered).doesNotContain("s3-credentials").doesNotContain("credentialsSecret");
    assertThat(rendered).contains("\"endpoint\" : \"http://minio.storage.svc:9000\"");
  }

  @Test
  void renderingDoesNotMutateTheCustomResource() {
    FineTuneJob cr = TestResources.minimal("immutable");
    String before = Json.canonical(cr.getSpec());
    TrainerConfigModel.from(FineTuneJobModel.from(cr, OperatorSettings.defaults()));
    assertThat(Json.canonical(cr.getSpec())).isEqualTo(before);
  }
}
