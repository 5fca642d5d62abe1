package io.kubetune.operator.reconciler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.kubetune.api.InvalidFieldException;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.status.Conditions;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Whatever a reconcile throws ends in a status a user can read and a Warning Event, through JOSDK's
 * real error path (updateErrorStatus), and the next good reconcile clears it.
 */
@EnableKubernetesMockClient(crud = true)
class ReconcileErrorLoopTest {
  static final String NS = "default";

  KubernetesClient client;
  Operator operator;

  /** A fault the reconciler throws before doing anything, while set. */
  final AtomicReference<RuntimeException> fault = new AtomicReference<>();

  @BeforeEach
  void startOperator() {
    TestResources.installCrd(client);
    operator =
        new Operator(
            o ->
                o.withKubernetesClient(client)
                    .withUseSSAToPatchPrimaryResource(false)
                    .withSSABasedCreateUpdateMatchForDependentResources(false)
                    .withCloseClientOnStop(false));
    operator.register(new FaultyReconciler(fault));
    operator.start();
  }

  @AfterEach
  void stopOperator() {
    operator.stop();
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
  void anExceptionBecomesAReconcileErrorConditionAndEventThenClears() {
    fault.set(new IllegalStateException("planted fault\nsecond line"));
    FineTuneJob cr = create(TestResources.minimal("faulty"));

    FineTuneJobStatus failing =
        awaitStatus(cr, s -> Conditions.isTrue(s.conditions, Conditions.RECONCILE_ERROR));
    assertThat(failing.phase).isEqualTo(Phase.Pending);
    assertThat(Conditions.findMessage(failing.conditions, Conditions.RECONCILE_ERROR))
        .contains("IllegalStateException: planted fault second line");
    assertThat(failing.message).startsWith("reconcile failed (retrying): ");
    Event event = awaitEvent(cr, "ReconcileError");
    assertThat(event.getType()).isEqualTo("Warning");
    assertThat(event.getMessage()).contains("planted fault");

    fault.set(null); // JOSDK's retry reconciles again
    FineTuneJobStatus recovered =
        awaitStatus(
            cr,
            s ->
                s.phase == Phase.Queued
                    && Conditions.find(s.conditions, Conditions.RECONCILE_ERROR) == null);
    assertThat(Conditions.isTrue(recovered.conditions, Conditions.VALIDATED)).isTrue();
  }

  @Test
  void badInputFoundWhileReconcilingIsValidatedFalseWithTheField() {
    fault.set(
        new InvalidFieldException("spec.baseModel.uri", "names no model", "point it at a folder"));
    FineTuneJob cr = create(TestResources.minimal("bad-field"));

    FineTuneJobStatus status = awaitStatus(cr, s -> s.phase == Phase.Failed);
    assertThat(Conditions.findMessage(status.conditions, Conditions.VALIDATED))
        .contains("spec.baseModel.uri: names no model; fix: point it at a folder");
    assertThat(Conditions.find(status.conditions, Conditions.RECONCILE_ERROR)).isNull();
    assertThat(awaitEvent(cr, "InvalidSpec").getMessage()).contains("spec.baseModel.uri");
  }

  /** The real reconciler, preceded by a planted fault while one is set. */
  @ControllerConfiguration(name = "faulty-finetunejob")
  static class FaultyReconciler extends FineTuneJobReconciler {
    private final AtomicReference<RuntimeException> fault;

    FaultyReconciler(AtomicReference<RuntimeException> fault) {
      super(OperatorSettings.defaults(), new FineTuneJobMetrics(new SimpleMeterRegistry()));
      this.fault = fault;
    }

    @Override
    public UpdateControl<FineTuneJob> reconcile(FineTuneJob cr, Context<FineTuneJob> context) {
      RuntimeException planted = fault.get();
      if (planted != null) {
        throw planted;
      }
      return super.reconcile(cr, context);
    }
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
