package io.kubetune.operator.serving;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder;
import io.kubetune.api.v1alpha1.AdapterStatus;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.ServingModel.Adapter;
import io.kubetune.operator.status.Conditions;
import io.kubetune.operator.status.FineTuneJobStatusAggregator;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import org.junit.jupiter.api.Test;

class ServingRolloutTest {
  static final OperatorSettings SETTINGS = OperatorSettings.defaults();
  static final Instant T0 = Instant.parse("2026-11-24T10:00:00Z");
  static final Adapter FIRST = new Adapter("s3://checkpoints/srv/final/rev1/", "digest-1");
  static final Adapter SECOND = new Adapter("s3://checkpoints/srv/final/rev2/", "digest-2");

  final FineTuneJob cr = servingJob();

  @Test
  void disabledServingRemovesEverything() {
    cr.getSpec().serving.enabled = false;
    FineTuneJobStatus status = trained(FIRST, true);
    ServingOutcome d = apply(status, null, T0);
    assertThat(d.deleteServing()).isTrue();
    assertThat(status.serving).isNull();
  }

  @Test
  void aPromotedAdapterIsRecordedThenRolledOutThenServed() {
    FineTuneJobStatus status = trained(FIRST, true);

    // 1. Intent first: nothing is created in this reconcile.
    ServingOutcome intent = apply(status, null, T0);
    assertThat(intent.deploymentAdapter()).isNull();
    assertThat(intent.requeueAfter()).isEqualTo(Duration.ofSeconds(1));
    assertThat(status.serving.rollout.adapterDigest).isEqualTo("digest-1");
    assertThat(status.serving.endpoint).isEqualTo("http://srv-serve.default.svc:8000/v1");
    assertThat(condition(status, Conditions.SERVING).getReason()).isEqualTo("RollingOut");

    // 2. Then the Deployment gets the adapter.
    ServingOutcome apply = apply(status, null, T0.plusSeconds(1));
    assertThat(apply.deploymentAdapter()).isEqualTo(FIRST);

    // 3. Its pods become ready: served.
    ServingOutcome served = apply(status, ready(FIRST), T0.plusSeconds(30));
    assertThat(served.deploymentAdapter()).isEqualTo(FIRST);
    assertThat(status.phase).isEqualTo(Phase.Serving);
    assertThat(status.serving.adapterDigest).isEqualTo("digest-1");
    assertThat(status.serving.rollout).isNull();
    assertThat(Conditions.isTrue(status.conditions, Conditions.SERVING)).isTrue();
    assertThat(Conditions.isTrue(status.conditions, Conditions.READY)).isTrue();
    assertThat(status.serving.readyReplicas).isEqualTo(1);
  }

  @Test
  void aNewAdapterThatNeverGetsReadyIsRolledBack() {
    FineTuneJobStatus status = servingFirst();
    // A new training run produced another adapter, in its own folder.
    status.adapter.uri = SECOND.uri();
    status.adapter.digest = SECOND.digest();

    apply(status, ready(FIRST), T0); // intent
    assertThat(status.serving.rollout.adapterDigest).isEqualTo("digest-2");
    ServingOutcome rolling = apply(status, ready(FIRST), T0.plusSeconds(1));
    assertThat(rolling.deploymentAdapter()).isEqualTo(SECOND);
    // The old adapter keeps serving during the rollout.
    assertThat(condition(status, Conditions.SERVING).getStatus()).isEqualTo("True");
    assertThat(condition(status, Conditions.SERVING).getReason()).isEqualTo("RollingOut");
    assertThat(rolling.requeueAfter()).isEqualTo(Duration.ofSeconds(10));

    Deployment stuck = notReady(SECOND);
    ServingOutcome rolledBack = apply(status, stuck, T0.plus(Duration.ofMinutes(11)));
    assertThat(rolledBack.deploymentAdapter()).isEqualTo(FIRST);
    assertThat(status.serving.failedAdapterDigest).isEqualTo("digest-2");
    assertThat(status.serving.adapterDigest).isEqualTo("digest-1");
    assertThat(status.serving.rollout).isNull();
    assertThat(condition(status, Conditions.READY).getReason()).isEqualTo("RolloutFailed");
    assertThat(condition(status, Conditions.READY).getMessage()).contains("within 10m");
    assertThat(condition(status, Conditions.SERVING).getReason()).isEqualTo("RolledBack");

    // The failed adapter is not retried; the previous one stays.
    ServingOutcome after = apply(status, ready(FIRST), T0.plus(Duration.ofMinutes(12)));
    assertThat(after.deploymentAdapter()).isEqualTo(FIRST);
    assertThat(status.serving.rollout).isNull();
    assertThat(condition(status, Conditions.READY).getReason()).isEqualTo("RolloutFailed");
  }

  @Test
  void aFailedGateRollsNothingOut() {
    FineTuneJobStatus status = trained(FIRST, false);
    ServingOutcome d = apply(status, null, T0);
    assertThat(d.deploymentAdapter()).isNull();
    assertThat(status.serving.rollout).isNull();
    assertThat(condition(status, Conditions.READY).getReason()).isEqualTo("QualityGateFailed");
  }

  @Test
  void aFailedGateKeepsTheAdapterThatServes() {
    FineTuneJobStatus status = servingFirst();
    status.adapter.uri = SECOND.uri();
    status.adapter.digest = SECOND.digest();
    status.conditions =
        Conditions.set(
            status.conditions, Conditions.PROMOTED, false, "QualityGateFailed", "worse", 1L, "t");
    ServingOutcome d = apply(status, ready(FIRST), T0);
    assertThat(d.deploymentAdapter()).isEqualTo(FIRST);
    assertThat(status.phase).isEqualTo(Phase.Serving);
    assertThat(condition(status, Conditions.READY).getReason()).isEqualTo("QualityGateFailed");
  }

  @Test
  void readinessTimeoutParses() {
    ServingSpec spec = new ServingSpec();
    spec.readinessTimeout = "1h30m";
    assertThat(ServingModel.readinessTimeout(spec)).isEqualTo(Duration.ofMinutes(90));
    spec.readinessTimeout = "90s";
    assertThat(ServingModel.readinessTimeout(spec)).isEqualTo(Duration.ofSeconds(90));
    assertThat(ServingModel.readinessTimeout(null)).isEqualTo(Duration.ofMinutes(10));
  }

  /** One reconcile's serving step: decide, then fold into status as the aggregator does. */
  private ServingOutcome apply(FineTuneJobStatus status, Deployment deployment, Instant now) {
    ServingOutcome outcome =
        ServingRollout.decide(FineTuneJobModel.from(cr, SETTINGS), status, deployment, now);
    FineTuneJobStatusAggregator.foldServing(status, outcome, 1L, now.toString());
    return outcome;
  }

  private FineTuneJobStatus servingFirst() {
    FineTuneJobStatus status = trained(FIRST, true);
    apply(status, null, T0.minusSeconds(60));
    apply(status, ready(FIRST), T0.minusSeconds(30));
    assertThat(status.phase).isEqualTo(Phase.Serving);
    return status;
  }

  private FineTuneJobStatus trained(Adapter adapter, boolean promoted) {
    FineTuneJobStatus status = new FineTuneJobStatus();
    status.phase = Phase.Succeeded;
    status.conditions = new ArrayList<>();
    status.adapter = new AdapterStatus();
    status.adapter.uri = adapter.uri();
    status.adapter.digest = adapter.digest();
    status.conditions =
        Conditions.set(
            status.conditions,
            Conditions.PROMOTED,
            promoted,
            promoted ? "QualityGatePassed" : "QualityGateFailed",
            "gate",
            1L,
            "t");
    return status;
  }

  private Deployment ready(Adapter adapter) {
    Deployment d = ServingModel.deployment(FineTuneJobModel.from(cr, SETTINGS), adapter);
    d.setStatus(
        new DeploymentStatusBuilder()
            .withReplicas(1)
            .withUpdatedReplicas(1)
            .withReadyReplicas(1)
            .withAvailableReplicas(1)
            .build());
    return d;
  }

  private Deployment notReady(Adapter adapter) {
    Deployment d = ServingModel.deployment(FineTuneJobModel.from(cr, SETTINGS), adapter);
    d.setStatus(
        new DeploymentStatusBuilder()
            .withReplicas(2)
            .withUpdatedReplicas(1)
            .withReadyReplicas(1)
            .withAvailableReplicas(1)
            .build());
    return d;
  }

  private static io.fabric8.kubernetes.api.model.Condition condition(
      FineTuneJobStatus status, String type) {
    return Conditions.find(status.conditions, type);
  }

  private static FineTuneJob servingJob() {
    FineTuneJob cr = TestResources.minimal("srv");
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.enabled = true;
    return cr;
  }
}
