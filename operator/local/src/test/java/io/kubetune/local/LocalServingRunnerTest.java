package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalServingRunnerTest {
  @Test
  void eachLocalReplicaGetsItsOwnPortOnLoopbackInsteadOfThePodPort() {
    assertThat(
            LocalServingRunner.withPort(List.of("serve", "--model", "/m", "--port", "8000"), 41234))
        .containsExactly("serve", "--model", "/m", "--port", "41234", "--host", "127.0.0.1");
    assertThat(LocalServingRunner.withPort(List.of("serve", "--host", "0.0.0.0"), 5))
        .containsExactly("serve", "--host", "0.0.0.0", "--port", "5");
  }

  @Test
  void aLocalReplicaGetsAShortShutdownDelayUnlessTheContainerSetsOne() {
    assertThat(LocalServingRunner.withShutdownDelay(List.of("serve", "--port", "5")))
        .containsExactly("serve", "--port", "5", "--shutdown-delay-seconds", "1");
    assertThat(
            LocalServingRunner.withShutdownDelay(List.of("serve", "--shutdown-delay-seconds", "0")))
        .containsExactly("serve", "--shutdown-delay-seconds", "0");
  }

  @Test
  void theStatusClaimsOnlyTheGenerationWhosePodsWereCounted(@TempDir Path state) throws Exception {
    try (EmbeddedApiServer api = new EmbeddedApiServer();
        LocalServingRunner runner =
            new LocalServingRunner(api.client(), state, Map.of(), state.resolve("trainer"))) {
      api.createNamespace("default");
      Deployment counted =
          api.client()
              .resource(
                  new DeploymentBuilder()
                      .withNewMetadata()
                      .withName("srv")
                      .withNamespace("default")
                      .endMetadata()
                      .withNewSpec()
                      .withReplicas(1)
                      .withNewTemplate()
                      .withNewSpec()
                      .addNewContainer()
                      .withName("serve")
                      .withArgs("serve", "--adapter", "m=run-1")
                      .endContainer()
                      .endSpec()
                      .endTemplate()
                      .endSpec()
                      .build())
              .create();
      // The operator changes the template after the runner listed the Deployment and counted the
      // pods of the old template, before the runner writes the status.
      Deployment changed =
          api.client()
              .apps()
              .deployments()
              .inNamespace("default")
              .withName("srv")
              .edit(
                  d -> {
                    d.getSpec()
                        .getTemplate()
                        .getSpec()
                        .getContainers()
                        .get(0)
                        .setArgs(List.of("serve", "--adapter", "m=run-2"));
                    return d;
                  });
      assertThat(changed.getMetadata().getGeneration())
          .isGreaterThan(counted.getMetadata().getGeneration());

      runner.setDeploymentStatus(counted, 1, 1, 1);

      Deployment stored =
          api.client().apps().deployments().inNamespace("default").withName("srv").get();
      assertThat(stored.getStatus().getReadyReplicas()).isEqualTo(1);
      // The ready pod runs the old template: the status does not describe the new generation.
      assertThat(stored.getStatus().getObservedGeneration())
          .isEqualTo(counted.getMetadata().getGeneration())
          .isLessThan(stored.getMetadata().getGeneration());
    }
  }
}
