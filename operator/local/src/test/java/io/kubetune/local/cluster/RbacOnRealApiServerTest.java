package io.kubetune.local.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.coordination.v1.LeaseBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.TrainingJobBuilder;
import java.io.IOException;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The shipped manifests/rbac.yaml, enforced by a real API server: a client holding a token of the
 * kubetune-operator ServiceAccount can make every call the operator makes, and cannot read Secrets.
 */
class RbacOnRealApiServerTest {
  private static final ResourceDefinitionContext FTJ =
      new ResourceDefinitionContext.Builder()
          .withGroup("kubetune.io")
          .withVersion("v1alpha1")
          .withPlural("finetunejobs")
          .withKind("FineTuneJob")
          .withNamespaced(true)
          .build();
  private static String namespace;
  private static KubernetesClient operator;

  @BeforeAll
  static void setUp() throws IOException {
    KubernetesClient admin = RealCluster.admin();
    namespace = RealCluster.restrictedNamespace("rbac");
    operator =
        RealCluster.controlPlane()
            .tokenClient(RealClusterSetup.operatorToken(admin, 3600), "kubetune-rbac-test");
  }

  @AfterAll
  static void tearDown() {
    if (operator != null) {
      operator.close();
    }
  }

  @Test
  void theOperatorsCallsAreAllowed() throws Exception {
    KubernetesClient admin = RealCluster.admin();
    FineTuneJob ftj =
        RealCluster.YAML.readValue(
            RealCluster.ROOT.resolve("examples/quickstart.yaml").toFile(), FineTuneJob.class);
    ftj.getMetadata().setNamespace(namespace);
    FineTuneJob created = admin.resource(ftj).create();

    // The primary resource: list and watch across namespaces, write status.
    assertThat(operator.resources(FineTuneJob.class).inAnyNamespace().list().getItems())
        .extracting(j -> j.getMetadata().getName())
        .contains(created.getMetadata().getName());
    assertThat(operator.genericKubernetesResources(FTJ).inAnyNamespace().list().getItems())
        .isNotEmpty();
    try (Watch watch =
        operator.resources(FineTuneJob.class).inAnyNamespace().watch(new NoOpWatcher<>())) {
      assertThat(watch).isNotNull();
    }
    FineTuneJob withStatus =
        operator
            .resources(FineTuneJob.class)
            .inNamespace(namespace)
            .withName(created.getMetadata().getName())
            .get();
    withStatus.setStatus(new FineTuneJobStatus());
    withStatus.getStatus().observedGeneration = 1L;
    FineTuneJob patched = operator.resource(withStatus).patchStatus();
    assertThat(patched.getStatus().observedGeneration).isEqualTo(1L);

    // Children: ConfigMap, Job, Deployment, Service; pods and their logs; Events; the Lease.
    operator
        .resource(
            new ConfigMapBuilder()
                .withNewMetadata()
                .withName("trainer-config")
                .withNamespace(namespace)
                .endMetadata()
                .withData(Map.of("config.json", "{}"))
                .build())
        .create();
    FineTuneJobModel model = FineTuneJobModel.from(created, OperatorSettings.defaults());
    Job job = TrainingJobBuilder.build(model);
    operator.resource(job).create();
    operator
        .batch()
        .v1()
        .jobs()
        .inNamespace(namespace)
        .withName(job.getMetadata().getName())
        .edit(
            j -> {
              j.getSpec().setSuspend(true);
              return j;
            });
    Deployment serving =
        ServingModel.deployment(
            model, new ServingModel.Adapter("s3://checkpoints/quickstart/final/", "digest-1"));
    operator.resource(serving).create();
    operator.resource(ServingModel.service(model)).create();
    assertThat(operator.pods().inNamespace(namespace).list().getItems()).isNotNull();
    assertThatThrownBy(
            () -> operator.pods().inNamespace(namespace).withName("no-such-pod").getLog())
        .isInstanceOfSatisfying(
            KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(404));
    operator
        .resource(
            new EventBuilder()
                .withNewMetadata()
                .withGenerateName("ftj-")
                .withNamespace(namespace)
                .endMetadata()
                .withNewInvolvedObject()
                .withApiVersion("kubetune.io/v1alpha1")
                .withKind("FineTuneJob")
                .withName(created.getMetadata().getName())
                .withNamespace(namespace)
                .withUid(created.getMetadata().getUid())
                .endInvolvedObject()
                .withReason("Test")
                .withMessage("an event from the operator's identity")
                .withType("Normal")
                .build())
        .create();
    operator
        .resource(
            new LeaseBuilder()
                .withNewMetadata()
                .withName("kubetune-operator-test-lease")
                .withNamespace("kubetune-system")
                .endMetadata()
                .withNewSpec()
                .withHolderIdentity("test")
                .endSpec()
                .build())
        .createOr(existing -> existing.update());
    operator
        .batch()
        .v1()
        .jobs()
        .inNamespace(namespace)
        .withName(job.getMetadata().getName())
        .delete();
    operator
        .apps()
        .deployments()
        .inNamespace(namespace)
        .withName(serving.getMetadata().getName())
        .delete();
  }

  @Test
  void theOperatorCannotReadSecrets() {
    RealCluster.admin()
        .resource(
            new SecretBuilder()
                .withNewMetadata()
                .withName("s3-credentials")
                .withNamespace(namespace)
                .endMetadata()
                .withStringData(Map.of("AWS_SECRET_ACCESS_KEY", "secret"))
                .build())
        .create();
    assertForbidden(
        () -> operator.secrets().inNamespace(namespace).withName("s3-credentials").get());
    assertForbidden(() -> operator.secrets().inNamespace(namespace).list());
    assertForbidden(() -> operator.secrets().inAnyNamespace().list());
  }

  @Test
  void theOperatorCannotEditTheSpecOfAFineTuneJob() throws IOException {
    GenericKubernetesResource ftj =
        RealCluster.YAML.readValue(
            RealCluster.ROOT.resolve("examples/quickstart.yaml").toFile(),
            GenericKubernetesResource.class);
    ftj.getMetadata().setNamespace(namespace);
    ftj.getMetadata().setName("not-for-the-operator");
    assertForbidden(() -> operator.genericKubernetesResources(FTJ).resource(ftj).create());
  }

  private static void assertForbidden(Runnable call) {
    assertThatThrownBy(call::run)
        .isInstanceOfSatisfying(
            KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(403));
  }

  private static final class NoOpWatcher<T> implements Watcher<T> {
    @Override
    public void eventReceived(Action action, T resource) {}

    @Override
    public void onClose(WatcherException cause) {}
  }
}
