package io.kubetune.operator.validation;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.v1alpha1.EarlyStoppingSpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FreezeSpec;
import io.kubetune.api.v1alpha1.GateSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.TestResources;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

class FineTuneJobValidatorTest {

  @Test
  void minimalJobIsValid() {
    assertThat(FineTuneJobValidator.validate(TestResources.minimal("ok"))).isEmpty();
  }

  @Test
  void loraSettingsWithAnotherMethodAreRejected() {
    assertProblem(
        cr -> {
          cr.getSpec().method.type = MethodSpec.Type.Full;
          cr.getSpec().method.lora = new LoraSpec();
        },
        "spec.method.lora",
        "method.type: LoRA");
  }

  @Test
  void freezeLayersNeedsTrainableLayers() {
    assertProblem(
        cr -> cr.getSpec().method.type = MethodSpec.Type.FreezeLayers,
        "spec.method.freeze.trainableLayers",
        "trainableLayers");
    assertProblem(
        cr -> {
          cr.getSpec().method.type = MethodSpec.Type.LoRA;
          cr.getSpec().method.freeze = new FreezeSpec();
          cr.getSpec().method.freeze.trainableLayers = 2;
        },
        "spec.method.freeze",
        "FreezeLayers");
  }

  @Test
  void bf16WithFullFineTuningIsRejected() {
    assertProblem(
        cr -> {
          cr.getSpec().method.type = MethodSpec.Type.Full;
          cr.getSpec().method.lora = null;
          cr.getSpec().hyperparameters = new HyperparametersSpec();
          cr.getSpec().hyperparameters.precision = HyperparametersSpec.Precision.bf16;
        },
        "spec.hyperparameters.precision",
        "use precision fp32 with method Full");
  }

  @Test
  void bf16WithLoraIsValid() {
    FineTuneJob job = TestResources.minimal("bf16");
    job.getSpec().hyperparameters = new HyperparametersSpec();
    job.getSpec().hyperparameters.precision = HyperparametersSpec.Precision.bf16;
    assertThat(FineTuneJobValidator.validate(job)).isEmpty();
  }

  @Test
  void unknownTargetModuleIsNamed() {
    assertProblem(
        cr -> {
          cr.getSpec().method.lora = new LoraSpec();
          cr.getSpec().method.lora.targetModules = List.of("q_proj", "qkv_proj");
        },
        "spec.method.lora.targetModules",
        "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
  }

  @Test
  void validationFileAndSplitAreExclusive() {
    assertProblem(
        cr -> cr.getSpec().dataset.validation = "s3://data/val.jsonl",
        "spec.dataset.validationSplit",
        "keep only one");
  }

  @Test
  void urisMustBeS3OrPvcWithoutTraversal() {
    assertProblem(
        cr -> cr.getSpec().baseModel.uri = "https://huggingface.co/meta-llama",
        "spec.baseModel.uri",
        "s3://<bucket>/<prefix> or pvc://<claim-name>/<path>");
    assertProblem(
        cr -> cr.getSpec().checkpoints.uri = "s3://checkpoints/a/../../other/",
        "spec.checkpoints.uri",
        "without . or .. segments");
    assertProblem(
        cr -> cr.getSpec().dataset.train = "s3://data/a/%2e%2e/b.jsonl",
        "spec.dataset.train",
        "without . or .. segments");
    assertProblem(
        cr -> cr.getSpec().dataset.train = "s3://data/folder/", "spec.dataset.train", "JSONL file");
  }

  @Test
  void uriThatDoesNotDecodeIsAProblemNotAnException() {
    // Before: URLDecoder threw IllegalArgumentException from the validator on every reconcile.
    assertProblem(
        cr -> cr.getSpec().dataset.train = "pvc://claim/data/%/train.jsonl",
        "spec.dataset.train",
        "write a literal % as %25");
    assertProblem(
        cr -> cr.getSpec().baseModel.uri = "s3://bucket/%zz/model/", "spec.baseModel.uri", "%25");
    assertProblem(
        cr -> cr.getSpec().checkpoints.uri = "s3://bucket/run\u0000/",
        "spec.checkpoints.uri",
        "U+0000");
  }

  @Test
  void credentialsInTheEndpointAreRejectedAndNeverEchoed() {
    FineTuneJob cr = TestResources.minimal("creds");
    cr.getSpec().storage = new io.kubetune.api.v1alpha1.StorageSpec();
    cr.getSpec().storage.endpoint = "http://AKIAPLANTED:s3cr3tPLANTED@minio:9000";
    List<ValidationProblem> problems = FineTuneJobValidator.validate(cr);
    assertThat(problems)
        .anySatisfy(
            p -> {
              assertThat(p.field()).isEqualTo("spec.storage.endpoint");
              assertThat(p.fix()).contains("credentialsSecret");
            });
    assertThat(problems.toString()).doesNotContain("PLANTED");
  }

  @Test
  void trainingFieldsChangeOnlyWithANewRestartNonce() {
    FineTuneJob cr = TestResources.minimal("run");
    cr.setStatus(new io.kubetune.api.v1alpha1.FineTuneJobStatus());
    cr.getStatus().trainingFields = io.kubetune.operator.model.TrainingRevision.fieldsOf(cr);
    assertThat(FineTuneJobValidator.validate(cr)).isEmpty();

    cr.getSpec().baseModel.uri = "s3://models/other/";
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.replicas = 2;
    assertThat(FineTuneJobValidator.validate(cr))
        .extracting(ValidationProblem::field)
        .containsExactly("spec.baseModel");

    cr.getSpec().restartNonce = "2";
    assertThat(FineTuneJobValidator.validate(cr)).isEmpty();
  }

  @Test
  void checkpointsInsideTheBaseModelAreRejected() {
    assertProblem(
        cr -> cr.getSpec().checkpoints.uri = "s3://models/tiny/checkpoints/",
        "spec.checkpoints.uri",
        "separate prefix");
  }

  @Test
  void epochsAndMaxStepsAreExclusive() {
    assertProblem(
        cr -> {
          cr.getSpec().hyperparameters = new HyperparametersSpec();
          cr.getSpec().hyperparameters.epochs = 2;
          cr.getSpec().hyperparameters.maxSteps = 100;
        },
        "spec.hyperparameters.maxSteps",
        "epochs and maxSteps");
  }

  @Test
  void classificationMetricsNeedClassificationData() {
    assertProblem(
        cr -> {
          cr.getSpec().hyperparameters = new HyperparametersSpec();
          cr.getSpec().hyperparameters.earlyStopping = new EarlyStoppingSpec();
          cr.getSpec().hyperparameters.earlyStopping.patience = 2;
          cr.getSpec().hyperparameters.earlyStopping.metric = EvalMetric.ACCURACY;
        },
        "spec.hyperparameters.earlyStopping.metric",
        "eval_loss or perplexity");
  }

  @Test
  void generationMetricsNeedCompletionOrChatDataWithGenerationOn() {
    FineTuneJob ok = TestResources.minimal("gen");
    ok.getSpec().serving = new ServingSpec();
    ok.getSpec().serving.gate = new GateSpec();
    ok.getSpec().serving.gate.metric = EvalMetric.BLEU;
    ok.getSpec().serving.gate.mustBeatBase = true;
    assertThat(FineTuneJobValidator.validate(ok)).isEmpty();
    assertProblem(
        cr -> {
          cr.getSpec().dataset.format = io.kubetune.api.v1alpha1.DatasetSpec.Format.classification;
          cr.getSpec().hyperparameters = new HyperparametersSpec();
          cr.getSpec().hyperparameters.earlyStopping = new EarlyStoppingSpec();
          cr.getSpec().hyperparameters.earlyStopping.patience = 2;
          cr.getSpec().hyperparameters.earlyStopping.metric = EvalMetric.ROUGE_L;
        },
        "spec.hyperparameters.earlyStopping.metric",
        "accuracy, f1");
    assertProblem(
        cr -> {
          cr.getSpec().evaluation = new io.kubetune.api.v1alpha1.EvaluationSpec();
          cr.getSpec().evaluation.generation = new io.kubetune.api.v1alpha1.GenerationEvalSpec();
          cr.getSpec().evaluation.generation.maxExamples = 0;
          cr.getSpec().serving = new ServingSpec();
          cr.getSpec().serving.gate = new GateSpec();
          cr.getSpec().serving.gate.metric = EvalMetric.EXACT_MATCH;
          cr.getSpec().serving.gate.threshold = 0.9;
        },
        "spec.serving.gate.metric",
        "evaluation.generation.maxExamples to at least 1");
    assertProblem(
        cr -> {
          cr.getSpec().evaluation = new io.kubetune.api.v1alpha1.EvaluationSpec();
          cr.getSpec().evaluation.generation = new io.kubetune.api.v1alpha1.GenerationEvalSpec();
          cr.getSpec().evaluation.generation.maxNewTokens = 0;
        },
        "spec.evaluation.generation.maxNewTokens",
        "an integer in [1, 32768]");
  }

  @Test
  void exportBestNeedsHeldOutDataAndOneRankingMetric() {
    assertProblem(
        cr -> {
          cr.getSpec().dataset.validationSplit = null;
          cr.getSpec().checkpoints.exportBest = true;
        },
        "spec.checkpoints.exportBest",
        "dataset.validation or dataset.validationSplit");
    assertProblem(
        cr -> {
          cr.getSpec().checkpoints.exportBest = true;
          cr.getSpec().hyperparameters = new HyperparametersSpec();
          cr.getSpec().hyperparameters.earlyStopping = new EarlyStoppingSpec();
          cr.getSpec().hyperparameters.earlyStopping.patience = 2;
          cr.getSpec().hyperparameters.earlyStopping.metric = EvalMetric.EVAL_LOSS;
          cr.getSpec().serving = new ServingSpec();
          cr.getSpec().serving.gate = new GateSpec();
          cr.getSpec().serving.gate.metric = EvalMetric.BLEU;
          cr.getSpec().serving.gate.mustBeatBase = true;
        },
        "spec.checkpoints.exportBest",
        "same metric for the gate and early stopping");
  }

  @Test
  void gateNeedsExactlyOneCriterionAndHeldOutData() {
    assertProblem(
        cr -> {
          cr.getSpec().serving = new ServingSpec();
          cr.getSpec().serving.gate = new GateSpec();
          cr.getSpec().serving.gate.metric = EvalMetric.EVAL_LOSS;
        },
        "spec.serving.gate",
        "exactly one of gate.threshold or gate.mustBeatBase");
    assertProblem(
        cr -> {
          cr.getSpec().dataset.validationSplit = null;
          cr.getSpec().serving = new ServingSpec();
          cr.getSpec().serving.gate = new GateSpec();
          cr.getSpec().serving.gate.metric = EvalMetric.EVAL_LOSS;
          cr.getSpec().serving.gate.threshold = 1.0;
        },
        "spec.serving.gate",
        "dataset.validation or dataset.validationSplit");
  }

  @Test
  void badQuantityIsNamed() {
    assertProblem(
        cr -> {
          cr.getSpec().resources = new io.kubetune.api.v1alpha1.ResourcesSpec();
          cr.getSpec().resources.memory = new io.fabric8.kubernetes.api.model.Quantity("0");
        },
        "spec.resources.memory",
        "positive quantity");
  }

  @Test
  void overlongNameIsRejected() {
    FineTuneJob cr = TestResources.minimal("x".repeat(64));
    assertThat(FineTuneJobValidator.validate(cr))
        .anySatisfy(p -> assertThat(p.field()).isEqualTo("metadata.name"));
  }

  @Test
  void missingRequiredSectionsAreAllReported() {
    FineTuneJob cr = TestResources.minimal("empty");
    cr.getSpec().baseModel = null;
    cr.getSpec().checkpoints = null;
    assertThat(FineTuneJobValidator.validate(cr))
        .extracting(ValidationProblem::field)
        .contains("spec.baseModel", "spec.checkpoints");
  }

  @Test
  void aCanaryDurationMustBeAPositiveDurationAndItsNumbersWithinBounds() {
    for (String bad : new String[] {"0m", "10", "ten minutes", "0s0m"}) {
      assertProblem(
          cr -> {
            cr.getSpec().serving = new ServingSpec();
            cr.getSpec().serving.canary = new io.kubetune.api.v1alpha1.CanarySpec();
            cr.getSpec().serving.canary.duration = bad;
          },
          "spec.serving.canary.duration",
          "e.g. 90s, 10m or 1h30m");
    }
    assertProblem(
        cr -> {
          cr.getSpec().serving = new ServingSpec();
          cr.getSpec().serving.canary = new io.kubetune.api.v1alpha1.CanarySpec();
          cr.getSpec().serving.canary.weight = 100;
        },
        "spec.serving.canary.weight",
        "an integer in [1, 99]");
    assertProblem(
        cr -> {
          cr.getSpec().serving = new ServingSpec();
          cr.getSpec().serving.canary = new io.kubetune.api.v1alpha1.CanarySpec();
          cr.getSpec().serving.canary.maxErrorRate = 1.5;
        },
        "spec.serving.canary.maxErrorRate",
        "a value in [0, 1]");
    FineTuneJob ok = TestResources.minimal("ok");
    ok.getSpec().serving = new ServingSpec();
    ok.getSpec().serving.canary = new io.kubetune.api.v1alpha1.CanarySpec();
    ok.getSpec().serving.canary.duration = "1h30m";
    ok.getSpec().serving.canary.weight = 25;
    ok.getSpec().serving.canary.maxErrorRate = 0.0;
    assertThat(FineTuneJobValidator.validate(ok)).isEmpty();
    ok.getSpec().serving.canary = new io.kubetune.api.v1alpha1.CanarySpec();
    assertThat(FineTuneJobValidator.validate(ok)).isEmpty();
  }

  private static void assertProblem(Consumer<FineTuneJob> breakIt, String field, String fixHint) {
    FineTuneJob cr = TestResources.minimal("bad");
    breakIt.accept(cr);
    List<ValidationProblem> problems = FineTuneJobValidator.validate(cr);
    assertThat(problems)
        .as("problems for %s", field)
        .anySatisfy(
            p -> {
              assertThat(p.field()).isEqualTo(field);
              assertThat(p.toString()).contains(fixHint);
            });
  }
}
