package io.kubetune.operator.serving;

import static io.kubetune.operator.serving.CanaryDeciderTest.report;
import static io.kubetune.operator.serving.CanaryDeciderTest.variant;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.v1alpha1.AdapterStatus;
import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanarySpec;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.ServingModel.Adapter;
import io.kubetune.operator.model.ServingModel.Canary;
import io.kubetune.operator.status.Conditions;
import io.kubetune.operator.status.FineTuneJobStatusAggregator;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The canary path of {@link ServingRollout}, one reconcile at a time. */
class CanaryRolloutTest {
  static final OperatorSettings SETTINGS = OperatorSettings.defaults();
  static final Instant T0 = Instant.parse("2026-11-24T10:00:00Z");
  // Each run exports into its own folder below the same checkpoints.uri.
  static final Adapter FIRST = new Adapter("s3://checkpoints/srv/final/rev1/", "digest-1");
  static final Adapter SECOND = new Adapter("s3://checkpoints/srv/final/rev2/", "digest-2");

  final FineTuneJob cr = canaryJob();

  @Test
  void aRetrainedAdapterIsObservedAsACanaryThenPromoted() {
    FineTuneJobStatus status = servingFirst();
    retrained(status, SECOND, true);

    // 1. The canary is recorded first; the Deployment stays on the first adapter alone.
    ServingOutcome intent = apply(status, ready(FIRST, null), List.of(), T0);
    assertThat(ServingModel.canaryOf(run(intent))).isNull();
    assertThat(intent.requeueAfter()).isEqualTo(Duration.ofSeconds(1));
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.Observing);
    assertThat(status.serving.canary.adapterDigest).isEqualTo("digest-2");
    assertThat(status.serving.canary.weight).isEqualTo(20);
    assertThat(status.serving.canary.startedAt).isEqualTo(T0.toString());
    assertThat(status.serving.adapterDigest).isEqualTo("digest-1");
    assertThat(reason(status, Conditions.SERVING)).isEqualTo("CanaryObserving");
    assertThat(status.phase).isEqualTo(Phase.Serving);

    // 2. Then both are served by the same Deployment (same name, the Service is untouched).
    ServingOutcome both = apply(status, ready(FIRST, null), List.of(), T0.plusSeconds(1));
    assertThat(ServingModel.adapterOf(run(both))).isEqualTo(FIRST);
    assertThat(ServingModel.canaryOf(run(both))).isEqualTo(new Canary(SECOND, 20));

    // 3. Ready: the pods' counts go to status; before the deadline it observes.
    Deployment canaryReady = ready(FIRST, new Canary(SECOND, 20));
    ServingOutcome observing =
        apply(status, canaryReady, counts(80, 0, 20, 0), T0.plusSeconds(120));
    assertThat(status.serving.canary.requests).isEqualTo(20);
    assertThat(status.serving.canary.stableRequests).isEqualTo(80);
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.Observing);
    assertThat(observing.requeueAfter()).isEqualTo(ServingRollout.ROLLOUT_POLL);
    // A pod that does not answer keeps the last counts.
    apply(status, canaryReady, List.of(), T0.plusSeconds(130));
    assertThat(status.serving.canary.requests).isEqualTo(20);

    // 4. At the deadline with an error rate within the maximum: promoted, the rollout to the
    // canary alone recorded while both are still served.
    ServingOutcome promoted =
        apply(status, canaryReady, counts(400, 3, 100, 1), T0.plusSeconds(600));
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.Promoted);
    assertThat(status.serving.canary.message).contains("1 of 100");
    assertThat(status.serving.rollout.adapterDigest).isEqualTo("digest-2");
    assertThat(ServingModel.canaryOf(run(promoted))).isNotNull();
    assertThat(reason(status, Conditions.SERVING)).isEqualTo("CanaryPromoted");

    // 5. The plain rollout takes it from there: the canary alone, then served.
    ServingOutcome rolling = apply(status, canaryReady, List.of(), T0.plusSeconds(601));
    assertThat(ServingModel.adapterOf(run(rolling))).isEqualTo(SECOND);
    assertThat(ServingModel.canaryOf(run(rolling))).isNull();
    apply(status, ready(SECOND, null), List.of(), T0.plusSeconds(640));
    assertThat(status.serving.adapterDigest).isEqualTo("digest-2");
    assertThat(status.serving.rollout).isNull();
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.Promoted);
    assertThat(Conditions.isTrue(status.conditions, Conditions.READY)).isTrue();
  }

  @Test
  void aCanaryFailingTooManyRequestsIsRolledBackEarlyAndNotRetried() {
    FineTuneJobStatus status = servingFirst();
    retrained(status, SECOND, true);
    apply(status, ready(FIRST, null), List.of(), T0);
    Deployment canaryReady = ready(FIRST, new Canary(SECOND, 20));
    ServingOutcome back = apply(status, canaryReady, counts(90, 0, 25, 5), T0.plusSeconds(60));

    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.RolledBack);
    assertThat(status.serving.canary.message).contains("5 of 25").contains("keeps serving");
    assertThat(status.serving.failedAdapterDigest).isEqualTo("digest-2");
    assertThat(status.serving.adapterDigest).isEqualTo("digest-1");
    assertThat(ServingModel.adapterOf(run(back))).isEqualTo(FIRST);
    assertThat(ServingModel.canaryOf(run(back))).isNull();
    assertThat(reason(status, Conditions.SERVING)).isEqualTo("CanaryRolledBack");
    assertThat(reason(status, Conditions.READY)).isEqualTo("CanaryRolledBack");

    // Later reconciles keep the first adapter and do not start the same canary again.
    ServingOutcome after = apply(status, ready(FIRST, null), List.of(), T0.plusSeconds(700));
    assertThat(ServingModel.canaryOf(run(after))).isNull();
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.RolledBack);
    assertThat(reason(status, Conditions.SERVING)).isEqualTo("CanaryRolledBack");
    assertThat(status.phase).isEqualTo(Phase.Serving);
  }

  @Test
  void aCanaryWhosePodsNeverBecomeReadyIsRolledBackAtTheReadinessTimeout() {
    FineTuneJobStatus status = servingFirst();
    retrained(status, SECOND, true);
    apply(status, ready(FIRST, null), List.of(), T0);
    Deployment stuck = notReady(FIRST, new Canary(SECOND, 20));
    ServingOutcome waiting = apply(status, stuck, List.of(), T0.plusSeconds(60));
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.Observing);
    assertThat(ServingModel.canaryOf(run(waiting))).isNotNull();

    ServingOutcome back = apply(status, stuck, List.of(), T0.plusSeconds(601));
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.RolledBack);
    assertThat(status.serving.canary.message).contains("did not become ready within 10m");
    assertThat(status.serving.failedAdapterDigest).isEqualTo("digest-2");
    assertThat(ServingModel.adapterOf(run(back))).isEqualTo(FIRST);
    assertThat(ServingModel.canaryOf(run(back))).isNull();
  }

  @Test
  void aNewRunSupersedesACanaryInFlightAndAFailedGateNeverStartsOne() {
    FineTuneJobStatus status = servingFirst();
    retrained(status, SECOND, true);
    apply(status, ready(FIRST, null), List.of(), T0);
    Deployment canaryReady = ready(FIRST, new Canary(SECOND, 20));
    apply(status, canaryReady, counts(10, 0, 2, 0), T0.plusSeconds(30));

    // A new run starts: its adapter is not promoted yet, the canary ends, the first one serves.
    status.adapter = null;
    status.phase = Phase.Running;
    status.conditions =
        Conditions.set(status.conditions, Conditions.PROMOTED, false, "Running", "t", 1L, "t");
    ServingOutcome superseded = apply(status, canaryReady, List.of(), T0.plusSeconds(40));
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.RolledBack);
    assertThat(status.serving.canary.message).contains("superseded");
    assertThat(status.serving.failedAdapterDigest).isNull();
    assertThat(ServingModel.canaryOf(run(superseded))).isNull();

    // The new run fails its gate: no canary.
    Adapter third = new Adapter("s3://checkpoints/srv/final/rev3/", "digest-3");
    retrained(status, third, false);
    ServingOutcome kept = apply(status, ready(FIRST, null), List.of(), T0.plusSeconds(900));
    assertThat(ServingModel.adapterOf(run(kept))).isEqualTo(FIRST);
    assertThat(ServingModel.canaryOf(run(kept))).isNull();
    assertThat(status.serving.canary.adapterDigest).isEqualTo("digest-2");
  }

  @Test
  void aRunExportedIntoTheServedAdaptersFolderIsRefusedAsACanaryAtOnce() {
    FineTuneJobStatus status = servingFirst();
    // A run with the served run's revision (restartNonce set back): it exported into the served
    // adapter's folder, which now holds the new adapter's files.
    Adapter overwritten = new Adapter(FIRST.uri(), "digest-2");
    retrained(status, overwritten, true);
    ServingOutcome refused = apply(status, ready(FIRST, null), List.of(), T0);

    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.RolledBack);
    assertThat(status.serving.canary.message)
        .contains("refused")
        .contains("training revision")
        .contains("spec.restartNonce not used before")
        .contains("keeps serving");
    assertThat(status.serving.failedAdapterDigest).isEqualTo("digest-2");
    assertThat(status.serving.adapterDigest).isEqualTo("digest-1");
    assertThat(ServingModel.adapterOf(run(refused))).isEqualTo(FIRST);
    assertThat(ServingModel.canaryOf(run(refused))).isNull();
    assertThat(reason(status, Conditions.READY)).isEqualTo("CanaryRolledBack");
    // Not tried again by later reconciles.
    ServingOutcome after = apply(status, ready(FIRST, null), List.of(), T0.plusSeconds(60));
    assertThat(ServingModel.canaryOf(run(after))).isNull();
    assertThat(status.serving.canary.decision).isEqualTo(CanaryDecision.RolledBack);
  }

  @Test
  void aRetrainWithIdenticalWeightsIsRolledOutPlainlyWithoutACanary() {
    FineTuneJobStatus status = servingFirst();
    // Bit-identical weights in the new run's folder: no A/B to observe, serving moves folders.
    Adapter same = new Adapter(SECOND.uri(), FIRST.digest());
    retrained(status, same, true);
    apply(status, ready(FIRST, null), List.of(), T0);
    assertThat(status.serving.canary).isNull();
    assertThat(status.serving.rollout.adapterUri).isEqualTo(SECOND.uri());
  }

  @Test
  void withoutServingCanaryARetrainedAdapterIsRolledOutPlainly() {
    cr.getSpec().serving.canary = null;
    FineTuneJobStatus status = servingFirst();
    retrained(status, SECOND, true);
    apply(status, ready(FIRST, null), List.of(), T0);
    assertThat(status.serving.canary).isNull();
    assertThat(status.serving.rollout.adapterDigest).isEqualTo("digest-2");
  }

  /** One reconcile's serving step: decide, then fold into status as the aggregator does. */
  private ServingOutcome apply(
      FineTuneJobStatus status, Deployment deployment, List<VariantsReport> facts, Instant now) {
    ServingOutcome outcome =
        ServingRollout.decide(FineTuneJobModel.from(cr, SETTINGS), status, deployment, facts, now);
    FineTuneJobStatusAggregator.foldServing(status, outcome, 1L, now.toString());
    return outcome;
  }

  private static Deployment run(ServingOutcome outcome) {
    assertThat(outcome.workload()).isInstanceOf(ServingOutcome.Workload.Run.class);
    return ((ServingOutcome.Workload.Run) outcome.workload()).deployment();
  }

  private static List<VariantsReport> counts(
      long stable, long stableErrors, long canary, long canaryErrors) {
    return List.of(
        report(
            variant("srv", "stable", "digest-1", stable, stableErrors),
            variant("srv", "canary", "digest-2", canary, canaryErrors)));
  }

  private FineTuneJobStatus servingFirst() {
    FineTuneJobStatus status = new FineTuneJobStatus();
    retrained(status, FIRST, true);
    apply(status, null, List.of(), T0.minusSeconds(60));
    apply(status, null, List.of(), T0.minusSeconds(59));
    apply(status, ready(FIRST, null), List.of(), T0.minusSeconds(30));
    assertThat(status.phase).isEqualTo(Phase.Serving);
    assertThat(status.serving.canary).isNull();
    return status;
  }

  private static void retrained(FineTuneJobStatus status, Adapter adapter, boolean promoted) {
    status.phase = Phase.Succeeded;
    if (status.conditions == null) {
      status.conditions = new ArrayList<>();
    }
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
  }

  private Deployment ready(Adapter adapter, Canary canary) {
    Deployment d = ServingModel.deployment(FineTuneJobModel.from(cr, SETTINGS), adapter, canary);
    d.setStatus(
        new DeploymentStatusBuilder()
            .withReplicas(1)
            .withUpdatedReplicas(1)
            .withReadyReplicas(1)
            .withAvailableReplicas(1)
            .build());
    return d;
  }

  private Deployment notReady(Adapter adapter, Canary canary) {
    Deployment d = ServingModel.deployment(FineTuneJobModel.from(cr, SETTINGS), adapter, canary);
    d.setStatus(
        new DeploymentStatusBuilder()
            .withReplicas(2)
            .withUpdatedReplicas(1)
            .withReadyReplicas(1)
            .withAvailableReplicas(1)
            .build());
    return d;
  }

  private static String reason(FineTuneJobStatus status, String type) {
    return Conditions.find(status.conditions, type).getReason();
  }

  private static FineTuneJob canaryJob() {
    FineTuneJob cr = TestResources.minimal("srv");
    cr.getSpec().serving = new ServingSpec();
    cr.getSpec().serving.enabled = true;
    cr.getSpec().serving.canary = new CanarySpec();
    cr.getSpec().serving.canary.weight = 20;
    return cr;
  }
}
