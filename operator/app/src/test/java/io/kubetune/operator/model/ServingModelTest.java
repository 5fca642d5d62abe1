package io.kubetune.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.Labels;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.model.ServingModel.Adapter;
import org.junit.jupiter.api.Test;

class ServingModelTest {
  static final Adapter ADAPTER = new Adapter("s3://checkpoints/house-style-lora/final/", "abc");

  @Test
  void deploymentServesTheAdapterSafely() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    cr.getSpec().serving.enabled = true;
    cr.getSpec().serving.replicas = 2;
    Deployment d =
        ServingModel.deployment(FineTuneJobModel.from(cr, OperatorSettings.defaults()), ADAPTER);

    assertThat(d.getMetadata().getName()).isEqualTo("house-style-lora-serve");
    assertThat(d.getMetadata().getOwnerReferences().get(0).getController()).isTrue();
    assertThat(d.getSpec().getReplicas()).isEqualTo(2);
    assertThat(d.getSpec().getStrategy().getRollingUpdate().getMaxUnavailable().getIntVal())
        .isZero();
    assertThat(d.getSpec().getSelector().getMatchLabels())
        .containsEntry(Labels.JOB, "house-style-lora")
        .containsEntry(Labels.COMPONENT, "serving");
    assertThat(d.getSpec().getTemplate().getMetadata().getAnnotations())
        .containsEntry(Labels.ADAPTER_DIGEST_ANNOTATION, "abc");
    Container server = d.getSpec().getTemplate().getSpec().getContainers().get(0);
    assertThat(server.getArgs())
        .containsSubsequence("serve", "--model", "s3://models/llama-tiny/")
        .contains("house-style-lora=s3://checkpoints/house-style-lora/final/");
    assertThat(server.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/health/ready");
    assertThat(server.getSecurityContext().getReadOnlyRootFilesystem()).isTrue();
    assertThat(server.getSecurityContext().getCapabilities().getDrop()).containsExactly("ALL");
    assertThat(server.getEnv())
        .anyMatch(e -> e.getName().equals("AWS_ENDPOINT_URL_S3"))
        .anyMatch(
            e ->
                e.getName().equals("AWS_SECRET_ACCESS_KEY")
                    && e.getValueFrom().getSecretKeyRef().getName().equals("s3-credentials"));
    assertThat(ServingModel.adapterOf(d)).isEqualTo(ADAPTER);
  }

  @Test
  void servingOnlyChangesChangeTheHashAndNothingElseDoes() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    cr.getSpec().serving.enabled = true;
    String before =
        ServingModel.hashOf(
            ServingModel.deployment(
                FineTuneJobModel.from(cr, OperatorSettings.defaults()), ADAPTER));
    assertThat(
            ServingModel.hashOf(
                ServingModel.deployment(
                    FineTuneJobModel.from(cr, OperatorSettings.defaults()), ADAPTER)))
        .isEqualTo(before);
    cr.getSpec().serving.replicas = 3;
    assertThat(
            ServingModel.hashOf(
                ServingModel.deployment(
                    FineTuneJobModel.from(cr, OperatorSettings.defaults()), ADAPTER)))
        .isNotEqualTo(before);
  }

  @Test
  void serviceSelectsTheServingPods() {
    FineTuneJob cr = TestResources.minimal("svc");
    cr.getSpec().serving = new ServingSpec();
    Service s = ServingModel.service(FineTuneJobModel.from(cr, OperatorSettings.defaults()));
    assertThat(s.getSpec().getSelector()).isEqualTo(Labels.servingSelector(cr));
    assertThat(s.getSpec().getPorts().get(0).getPort()).isEqualTo(8000);
  }
}
