package io.kubetune.local.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.scheduling.v1.PriorityClassBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.TrainingJobBuilder;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The training Job and serving Deployment the operator's pure builders make for every example pass
 * the real API server's validation, and their pods are admitted in a namespace that enforces the
 * "restricted" Pod Security Standard (a dry run: there is no kubelet to run them).
 */
class PodSecurityOnRealApiServerTest {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static String namespace;

  @BeforeAll
  static void setUp() {
    KubernetesClient admin = RealCluster.admin();
    namespace = RealCluster.restrictedNamespace("psa");
    // examples/lora-completion.yaml names a PriorityClass; the Priority admission plugin refuses
    // pods whose class does not exist, as a real cluster would.
    admin
        .resource(
            new PriorityClassBuilder()
                .withNewMetadata()
                .withName("batch-low")
                .endMetadata()
                .withValue(100)
                .build())
        .createOr(existing -> existing.update());
    // The ServiceAccount admission plugin needs the namespace's default ServiceAccount, which
    // kube-controller-manager creates.
    admin
        .serviceAccounts()
        .inNamespace(namespace)
        .withName("default")
        .waitUntilCondition(sa -> sa != null, 60, TimeUnit.SECONDS);
  }

  static java.util.stream.Stream<Path> examples() throws IOException {
    return CrdOnRealApiServerTest.examples();
  }

  @ParameterizedTest
  @MethodSource("examples")
  void theTrainingJobAndItsPodAreAdmitted(Path example) throws IOException {
    FineTuneJob job = fineTuneJob(example);
    Job training =
        TrainingJobBuilder.build(FineTuneJobModel.from(job, OperatorSettings.defaults()));
    KubernetesClient admin = RealCluster.admin();
    assertThat(admin.resource(training).dryRun().create().getMetadata().getUid()).isNotBlank();
    Pod pod = podOf(training.getSpec().getTemplate(), training.getMetadata().getName());
    assertThat(admin.resource(pod).dryRun().create().getMetadata().getUid()).isNotBlank();
  }

  /** The examples with a serving section (the serving Deployment is built only for them). */
  static java.util.stream.Stream<Path> servingExamples() throws IOException {
    return examples()
        .filter(
            p -> {
              try {
                return fineTuneJob(p).getSpec().serving != null;
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
  }

  @ParameterizedTest
  @MethodSource("servingExamples")
  void theServingDeploymentAndItsPodAreAdmitted(Path example) throws IOException {
    FineTuneJob job = fineTuneJob(example);
    FineTuneJobModel model = FineTuneJobModel.from(job, OperatorSettings.defaults());
    Deployment serving =
        ServingModel.deployment(
            model, new ServingModel.Adapter("s3://checkpoints/example/final/", "digest-1"));
    KubernetesClient admin = RealCluster.admin();
    assertThat(admin.resource(serving).dryRun().create().getMetadata().getUid()).isNotBlank();
    assertThat(admin.resource(ServingModel.service(model)).dryRun().create().getMetadata().getUid())
        .isNotBlank();
    Pod pod = podOf(serving.getSpec().getTemplate(), serving.getMetadata().getName());
    assertThat(admin.resource(pod).dryRun().create().getMetadata().getUid()).isNotBlank();
  }

  private static Pod podOf(PodTemplateSpec template, String name) {
    return new PodBuilder()
        .withNewMetadataLike(template.getMetadata())
        .withName(name + "-pod")
        .withNamespace(namespace)
        .endMetadata()
        .withSpec(template.getSpec())
        .build();
  }

  private static FineTuneJob fineTuneJob(Path example) throws IOException {
    FineTuneJob job = YAML.readValue(example.toFile(), FineTuneJob.class);
    job.getMetadata().setNamespace(namespace);
    job.getMetadata().setUid("11111111-2222-3333-4444-555555555555");
    job.getMetadata().setGeneration(1L);
    return job;
  }
}
