package io.kubetune.operator.dependent;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.TrainerConfigMapBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * What each dependent counts as drift. The API server and other controllers add fields of their own
 * (cluster IPs, annotations, defaults): those must not cause a write, or an unchanged FineTuneJob
 * would cost writes on every resync.
 */
class DependentsMatchTest {
  final FineTuneJobMetrics metrics = new FineTuneJobMetrics(new SimpleMeterRegistry());
  final FineTuneJob cr = servingJob();
  final FineTuneJobModel model = FineTuneJobModel.from(cr, OperatorSettings.defaults());

  @Test
  void theConfigMapMatchesOnItsDocumentAndTheOperatorsMetadata() {
    var dependent = new TrainerConfigMapDependent(metrics);
    ConfigMap desired = TrainerConfigMapBuilder.build(model);
    ConfigMap decorated =
        new ConfigMapBuilder(desired)
            .editMetadata()
            .addToAnnotations("someone.else/note", "x")
            .withResourceVersion("7")
            .endMetadata()
            .build();
    assertThat(dependent.match(decorated, desired, cr, null).matched()).isTrue();

    ConfigMap edited = new ConfigMapBuilder(desired).withData(Map.of("trainer.json", "{}")).build();
    assertThat(dependent.match(edited, desired, cr, null).matched()).isFalse();
  }

  @Test
  void theDeploymentMatchesOnItsSpecHash() {
    var dependent = new ServingDeploymentDependent(metrics);
    Deployment desired =
        ServingModel.deployment(
            model, new ServingModel.Adapter("s3://checkpoints/dep/final/rev1/", "a"));
    Deployment scaledByHand =
        new DeploymentBuilder(desired).editSpec().withReplicas(5).endSpec().build();
    // Same hash annotation: what the operator wrote is still what it wants.
    assertThat(dependent.match(scaledByHand, desired, cr, null).matched()).isTrue();

    Deployment other =
        ServingModel.deployment(
            model, new ServingModel.Adapter("s3://checkpoints/dep/final/rev1/", "b"));
    assertThat(dependent.match(other, desired, cr, null).matched()).isFalse();
  }

  @Test
  void theServiceIgnoresWhatTheApiServerFillsIn() {
    var dependent = new ServingServiceDependent(metrics);
    Service desired = ServingModel.service(model);
    Service defaulted =
        new ServiceBuilder(desired)
            .editSpec()
            .withClusterIP("10.0.0.12")
            .withSessionAffinity("None")
            .endSpec()
            .build();
    assertThat(dependent.match(defaulted, desired, cr, null).matched()).isTrue();

    Service retargeted =
        new ServiceBuilder(desired)
            .editSpec()
            .withSelector(Map.of("app", "other"))
            .endSpec()
            .build();
    assertThat(dependent.match(retargeted, desired, cr, null).matched()).isFalse();
  }

  private static FineTuneJob servingJob() {
    FineTuneJob cr = TestResources.minimal("dep");
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.enabled = true;
    return cr;
  }
}
