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
  static final Adapter ADAPTER =
      new Adapter("s3://checkpoints/house-style-lora/final/rev1/", "abc");

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
        .contains("house-style-lora=s3://checkpoints/house-style-lora/final/rev1/");
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
  void aCanaryIsServedByTheSamePodsNextToTheStableAdapter() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    cr.getSpec().serving.enabled = true;
    FineTuneJobModel model = FineTuneJobModel.from(cr, OperatorSettings.defaults());
    ServingModel.Canary canary =
        new ServingModel.Canary(
            new Adapter("s3://checkpoints/house-style-lora/final/rev2/", "def"), 25);
    Deployment d = ServingModel.deployment(model, ADAPTER, canary);

    Container server = d.getSpec().getTemplate().getSpec().getContainers().get(0);
    assertThat(server.getArgs())
        .containsSubsequence(
            "--adapter",
            "house-style-lora=s3://checkpoints/house-style-lora/final/rev1/",
            "--adapter-digest",
            "abc",
            "--canary",
            "house-style-lora=s3://checkpoints/house-style-lora/final/rev2/",
            "--canary-digest",
            "def",
            "--canary-weight",
            "25",
            "--port",
            "8000");
    assertThat(ServingModel.adapterOf(d)).isEqualTo(ADAPTER);
    assertThat(ServingModel.canaryOf(d)).isEqualTo(canary);
    // Same Deployment name, same selector: the Service and its endpoint do not change.
    Deployment plain = ServingModel.deployment(model, ADAPTER);
    assertThat(d.getMetadata().getName()).isEqualTo(plain.getMetadata().getName());
    assertThat(d.getSpec().getSelector()).isEqualTo(plain.getSpec().getSelector());
    assertThat(ServingModel.canaryOf(plain)).isNull();
    assertThat(plain.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs())
        .doesNotContain("--canary", "--canary-digest", "--canary-weight");
    // Adding, re-weighting or dropping the canary is a new template (a rolling update).
    assertThat(ServingModel.hashOf(d)).isNotEqualTo(ServingModel.hashOf(plain));
    assertThat(
            ServingModel.hashOf(
                ServingModel.deployment(
                    model, ADAPTER, new ServingModel.Canary(canary.adapter(), 50))))
        .isNotEqualTo(ServingModel.hashOf(d));
    assertThat(ServingModel.deployment(model, ADAPTER, null)).isEqualTo(plain);
  }

  @Test
  void aCanaryOnAnotherVolumeMountsItReadOnly() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    cr.getSpec().serving.enabled = true;
    Deployment d =
        ServingModel.deployment(
            FineTuneJobModel.from(cr, OperatorSettings.defaults()),
            ADAPTER,
            new ServingModel.Canary(new Adapter("pvc://runs/house-style/run-2/", "def"), 10));
    assertThat(d.getSpec().getTemplate().getSpec().getVolumes())
        .anySatisfy(
            v -> {
              assertThat(v.getPersistentVolumeClaim()).isNotNull();
              assertThat(v.getPersistentVolumeClaim().getClaimName()).isEqualTo("runs");
            });
    Container server = d.getSpec().getTemplate().getSpec().getContainers().get(0);
    String canaryArg = server.getArgs().get(server.getArgs().indexOf("--canary") + 1);
    assertThat(canaryArg).startsWith("house-style-lora=file:///").endsWith("/house-style/run-2/");
    String path = java.net.URI.create(canaryArg.substring("house-style-lora=".length())).getPath();
    assertThat(server.getVolumeMounts())
        .anySatisfy(
            m -> {
              assertThat(path).startsWith(m.getMountPath() + "/");
              assertThat(m.getReadOnly()).isTrue();
            });
  }

  @Test
  void canarySettingsResolveTheirDefaultsFromBounds() {
    ServingSpec spec = new ServingSpec();
    assertThat(ServingModel.canaryEnabled(spec)).isFalse();
    assertThat(ServingModel.canaryEnabled(null)).isFalse();
    spec.canary = new io.kubetune.api.v1alpha1.CanarySpec();
    assertThat(ServingModel.canaryEnabled(spec)).isTrue();
    assertThat(ServingModel.canaryWeight(spec)).isEqualTo(10);
    assertThat(ServingModel.canaryDuration(spec)).isEqualTo(java.time.Duration.ofMinutes(10));
    assertThat(ServingModel.canaryMaxErrorRate(spec)).isEqualTo(0.01);
    spec.canary.weight = 30;
    spec.canary.duration = "1h30s";
    spec.canary.maxErrorRate = 0.0;
    assertThat(ServingModel.canaryWeight(spec)).isEqualTo(30);
    assertThat(ServingModel.canaryDuration(spec))
        .isEqualTo(java.time.Duration.ofHours(1).plusSeconds(30));
    assertThat(ServingModel.canaryMaxErrorRate(spec)).isZero();
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
