package io.kubetune.operator.reconciler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.status.Conditions;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Whatever a reconcile throws ends in a status a user can read and a Warning Event, through JOSDK's
 * real error path (updateErrorStatus), and the next good reconcile clears it. Bad input found only
 * while reconciling: ReconcileErrorStatusTest.
 */
@EnableKubernetesMockClient(crud = true)
class ReconcileErrorLoopTest {
  static final String NS = "default";

  KubernetesMockServer server;
  KubernetesClient client;
  KubernetesClient operatorClient;
  Operator operator;

  @BeforeEach
  void startOperator() {
    TestResources.installCrd(client);
    // No client-side retries: the planted API failures must reach the reconciler.
    operatorClient =
        new KubernetesClientBuilder()
            .withConfig(
                new ConfigBuilder(client.getConfiguration())
                    .withRequestRetryBackoffLimit(0)
                    .build())
            .build();
    operator =
        new Operator(
            o ->
                o.withKubernetesClient(operatorClient)
                    .withUseSSAToPatchPrimaryResource(false)
                    .withSSABasedCreateUpdateMatchForDependentResources(false)
                    .withCloseClientOnStop(false));
    operator.register(
        new FineTuneJobReconciler(
            OperatorSettings.defaults(), new FineTuneJobMetrics(new SimpleMeterRegistry())));
    operator.start();
  }

  @AfterEach
  void stopOperator() {
    operator.stop();
    operatorClient.close();
  }

  @Test
  void aUriThatDoesNotDecodeEndsInValidatedFalseNamingTheField() {
    // Before: the validator threw IllegalArgumentException (URLDecoder) on every reconcile and
    // the status stayed empty.
    FineTuneJob cr = TestResources.minimal("bad-percent");
    cr.getSpec().dataset.train = "pvc://claim/data/%/train.jsonl";
    create(cr);

    FineTuneJobStatus status = awaitStatus(cr, s -> s.phase == Phase.Failed);
    Condition validated = Conditions.find(status.conditions, Conditions.VALIDATED);
    assertThat(validated.getStatus()).isEqualTo("False");
    assertThat(validated.getMessage()).contains("spec.dataset.train").contains("%25");
    assertThat(awaitEvent(cr, "InvalidSpec").getType()).isEqualTo("Warning");
  }

  @Test
  void anApiFailureBecomesAReconcileErrorConditionAndEventThenClears() {
    // The API server refuses the first two ConfigMap creations (then CRUD resumes): the
    // reconcile throws KubernetesClientException, JOSDK retries.
    server
        .expect()
        .post()
        .withPath("/api/v1/namespaces/" + NS + "/configmaps")
        .andReturn(
            500,
            new StatusBuilder()
                .withCode(500)
                .withMessage("planted fault\nsecond line")
                .withStatus("Failure")
                .build())
        .times(2);
    FineTuneJob cr = create(TestResources.minimal("faulty"));

    FineTuneJobStatus failing =
        awaitStatus(cr, s -> Conditions.isTrue(s.conditions, Conditions.RECONCILE_ERROR));
    assertThat(failing.phase).isEqualTo(Phase.Pending);
    assertThat(Conditions.findMessage(failing.conditions, Conditions.RECONCILE_ERROR).orElseThrow())
        .startsWith("KubernetesClientException: ")
        .contains("planted fault second line")
        .doesNotContain("\n");
    assertThat(failing.message).startsWith("reconcile failed (retrying): ");
    Event event = awaitEvent(cr, "ReconcileError");
    assertThat(event.getType()).isEqualTo("Warning");
    assertThat(event.getMessage()).contains("planted fault");

    FineTuneJobStatus recovered =
        awaitStatus(
            cr,
            s ->
                s.phase == Phase.Queued
                    && Conditions.find(s.conditions, Conditions.RECONCILE_ERROR) == null);
    assertThat(Conditions.isTrue(recovered.conditions, Conditions.VALIDATED)).isTrue();
  }

  private FineTuneJob create(FineTuneJob cr) {
    cr.getMetadata().setUid(null);
    cr.getMetadata().setGeneration(null);
    cr.getMetadata().setNamespace(NS);
    return client.resource(cr).create();
  }

  private FineTuneJobStatus awaitStatus(FineTuneJob cr, Predicate<FineTuneJobStatus> condition) {
    await()
        .atMost(Duration.ofSeconds(20))
        .alias("status of " + cr.getMetadata().getName())
        .until(
            () -> {
              FineTuneJob current = get(cr);
              return current != null
                  && current.getStatus() != null
                  && condition.test(current.getStatus());
            });
    return get(cr).getStatus();
  }

  private FineTuneJob get(FineTuneJob cr) {
    return client
        .resources(FineTuneJob.class)
        .inNamespace(NS)
        .withName(cr.getMetadata().getName())
        .get();
  }

  private Event awaitEvent(FineTuneJob cr, String reason) {
    await()
        .atMost(Duration.ofSeconds(10))
        .alias(reason + " event of " + cr.getMetadata().getName())
        .until(() -> event(cr, reason) != null);
    return event(cr, reason);
  }

  private Event event(FineTuneJob cr, String reason) {
    return client.v1().events().inNamespace(NS).list().getItems().stream()
        .filter(e -> cr.getMetadata().getName().equals(e.getInvolvedObject().getName()))
        .filter(e -> reason.equals(e.getReason()))
        .findFirst()
        .orElse(null);
  }
}
