package io.kubetune.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.TestResources;
import org.junit.jupiter.api.Test;

class TrainingRevisionTest {

  @Test
  void servingAndSuspendDoNotChangeTheRevision() {
    FineTuneJob a = TestResources.minimal("r");
    FineTuneJob b = TestResources.minimal("r");
    b.getSpec().suspend = true;
    b.getSpec().serving = new ServingSpec();
    b.getSpec().serving.enabled = true;
    b.getSpec().serving.replicas = 3;
    assertThat(TrainingRevision.of(b)).isEqualTo(TrainingRevision.of(a));
  }

  @Test
  void resourcesChangeTheRuntimeNotTheRevision() {
    FineTuneJob a = TestResources.minimal("r");
    FineTuneJob b = TestResources.minimal("r");
    b.getSpec().resources = new io.kubetune.api.v1alpha1.ResourcesSpec();
    b.getSpec().resources.gpus = 2;
    assertThat(TrainingRevision.of(b)).isEqualTo(TrainingRevision.of(a));
    assertThat(TrainingRevision.runtimeOf(b)).isNotEqualTo(TrainingRevision.runtimeOf(a));
  }

  @Test
  void trainingFieldsAndRestartNonceChangeTheRevision() {
    FineTuneJob a = TestResources.minimal("r");
    FineTuneJob nonce = TestResources.minimal("r");
    nonce.getSpec().restartNonce = "2";
    FineTuneJob data = TestResources.minimal("r");
    data.getSpec().dataset.train = "s3://data/other.jsonl";
    assertThat(TrainingRevision.of(nonce)).isNotEqualTo(TrainingRevision.of(a));
    assertThat(TrainingRevision.of(data)).isNotEqualTo(TrainingRevision.of(a));
    assertThat(TrainingRevision.of(a)).hasSize(12).matches("[0-9a-f]+");
  }
}
