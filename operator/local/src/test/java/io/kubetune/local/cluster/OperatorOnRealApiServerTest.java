package io.kubetune.local.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.OperatorSettings;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator (JOSDK, informers, status writes) on the real API server, as its ServiceAccount with
 * the shipped ClusterRole, with production's write path (server-side apply off, see operator/app's
 * application.properties) and Kubernetes' own Job controller and garbage collector.
 */
class OperatorOnRealApiServerTest {
  private static final String USER_AGENT = "kubetune-operator-under-test";
  private static String namespace;
  private static KubernetesClient operatorClient;
  private static Operator operator;

  @BeforeAll
  static void startOperator() {
    ControlPlane controlPlane = RealCluster.controlPlane();
    namespace = RealCluster.restrictedNamespace("op");
    operatorClient = RealClusterSetup.operatorClient(controlPlane, USER_AGENT);
    operator =
        RealClusterSetup.startOperator(
            operatorClient,
            OperatorSettings.defaults().withProgressPollInterval(Duration.ofMillis(500)),
            new SimpleMeterRegistry());
  }

  @AfterAll
  static void stopOperator() {
    if (operator != null) {
      operator.stop();
    }
    if (operatorClient != null) {
      operatorClient.close();
    }
  }

  @Test
  void createThenDeleteWithTheRealJobControllerAndGarbageCollector() throws Exception {
    KubernetesClient admin = RealCluster.admin();
    FineTuneJob cr =
        RealCluster.YAML.readValue(
            RealCluster.ROOT.resolve("examples/support-tickets-classification.yaml").toFile(),
            FineTuneJob.class);
    cr.getMetadata().setNamespace(namespace);
    FineTuneJob created = admin.resource(cr).create();
    String jobName = Names.trainingJob(created);

    // The operator creates the ConfigMap and the Job ...
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () -> admin.batch().v1().jobs().inNamespace(namespace).withName(jobName).get() != null);
    ConfigMap config =
        admin.configMaps().inNamespace(namespace).withName(Names.trainerConfigMap(created)).get();
    assertThat(config).isNotNull();
    // ... the real Job controller creates its pod, which PodSecurity "restricted" admits ...
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () ->
                !admin
                    .pods()
                    .inNamespace(namespace)
                    .withLabel("job-name", jobName)
                    .list()
                    .getItems()
                    .isEmpty());
    Pod pod =
        admin.pods().inNamespace(namespace).withLabel("job-name", jobName).list().getItems().get(0);
    assertThat(pod.getMetadata().getOwnerReferences().get(0).getKind()).isEqualTo("Job");
    // ... and the operator writes status through the status subresource.
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () -> {
              FineTuneJob current =
                  admin
                      .resources(FineTuneJob.class)
                      .inNamespace(namespace)
                      .withName(created.getMetadata().getName())
                      .get();
              return current.getStatus() != null
                  && current.getStatus().phase != null
                  && created
                      .getMetadata()
                      .getGeneration()
                      .equals(current.getStatus().observedGeneration);
            });

    // Deleting the FineTuneJob: the garbage collector removes the Job, its pod and the ConfigMap.
    // The collector notices a new CRD's resource type at its next discovery sync (every 30 s),
    // so this can take that long when the CRD was installed just before.
    admin.resource(created).delete();
    await()
        .atMost(Duration.ofSeconds(120))
        .until(
            () ->
                admin.batch().v1().jobs().inNamespace(namespace).withName(jobName).get() == null
                    && admin
                            .configMaps()
                            .inNamespace(namespace)
                            .withName(Names.trainerConfigMap(created))
                            .get()
                        == null
                    && admin
                        .pods()
                        .inNamespace(namespace)
                        .withLabel("job-name", jobName)
                        .list()
                        .getItems()
                        .isEmpty());
    assertThat(RealCluster.forbiddenOperatorRequests(USER_AGENT)).isEmpty();
  }
}
