package io.kubetune.operator.serving;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.api.v1alpha1.AdapterStatus;
import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanaryStatus;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.RolloutStatus;
import io.kubetune.api.v1alpha1.ServingStatus;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.ServingModel.Adapter;
import io.kubetune.operator.model.ServingModel.Canary;
import io.kubetune.operator.serving.ServingOutcome.Verdict;
import io.kubetune.operator.serving.ServingOutcome.Workload;
import io.kubetune.operator.status.Conditions;
import io.kubetune.operator.support.Json;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The serving state machine, pure: from the training result (status.adapter and the Promoted
 * condition), the previous serving status and the observed Deployment it decides which adapter the
 * Deployment should run and what status should say, as a {@link ServingOutcome}. It writes nothing:
 * the status aggregator folds the outcome into status, the controller's serving dependents make the
 * children match its workload.
 *
 * <ul>
 *   <li>A promoted adapter that differs from the one serving is rolled out: the intent is recorded
 *       in status.serving.rollout first (one reconcile), then the Deployment is updated; its
 *       rolling update keeps the previous pods until new ones are ready.
 *   <li>Ready within serving.readinessTimeout: it becomes status.serving.adapter, phase Serving.
 *   <li>Not ready in time: the Deployment goes back to the adapter that was serving, the failed
 *       digest is remembered (not retried until a new training run), Ready=False RolloutFailed.
 *   <li>A failed gate or an unfinished run changes nothing: what serves keeps serving.
 *   <li>serving.enabled false removes the Deployment and Service.
 *   <li>With serving.canary, a new promoted adapter while another serves and is ready becomes a
 *       canary next to it first (status.serving.canary recorded before the Deployment changes);
 *       {@link CanaryDecider} promotes it (then the rollout above) or rolls it back from the error
 *       rate the serving pods report. See docs/serving.md.
 * </ul>
 */
public final class ServingRollout {
  /** Re-check a rollout at least this often, to notice the readiness timeout. */
  static final Duration ROLLOUT_POLL = Duration.ofSeconds(10);

  private ServingRollout() {}

  /**
   * Decides serving from the status training produced in this reconcile ({@code trained}: adapter,
   * Promoted, phase, the previous status.serving), which it only reads.
   */
  public static ServingOutcome decide(
      FineTuneJobModel model, FineTuneJobStatus trained, Deployment deployment, Instant now) {
    return decide(model, trained, deployment, List.of(), now);
  }

  /**
   * As {@link #decide(FineTuneJobModel, FineTuneJobStatus, Deployment, Instant)}, with what the
   * ready serving pods report ({@code GET /v1/variants}; empty when none answered or no canary
   * runs), which a canary is decided on.
   */
  public static ServingOutcome decide(
      FineTuneJobModel model,
      FineTuneJobStatus trained,
      Deployment deployment,
      List<VariantsReport> variants,
      Instant now) {
    if (!model.servingEnabled()) {
      return ServingOutcome.off();
    }
    return new Decider(model, trained, deployment, variants, now).decide();
  }

  /** One decision: the desired Deployment is built at most once per adapter. */
  private static final class Decider {
    final FineTuneJobModel model;
    final FineTuneJobStatus trained;
    final Deployment deployment;
    final List<VariantsReport> variants;
    final Instant now;
    final ServingStatus serving;
    final Map<Adapter, Deployment> desired = new HashMap<>();
    Verdict servingCondition;
    Verdict ready;
    String servingMessage;

    Decider(
        FineTuneJobModel model,
        FineTuneJobStatus trained,
        Deployment deployment,
        List<VariantsReport> variants,
        Instant now) {
      this.model = model;
      this.trained = trained;
      this.deployment = deployment;
      this.variants = variants;
      this.now = now;
      this.serving =
          trained.serving == null
              ? new ServingStatus()
              : Json.copy(trained.serving, ServingStatus.class);
    }

    ServingOutcome decide() {
      String nowText = now.toString();
      serving.endpoint = model.servingEndpoint();
      serving.model = model.name();
      Adapter current =
          serving.adapterDigest == null
              ? null
              : new Adapter(serving.adapterUri, serving.adapterDigest);
      Adapter candidate = promotedAdapter(trained);
      Adapter target = candidate;
      if (target != null && target.digest().equals(serving.failedAdapterDigest)) {
        target = current; // this adapter failed to become ready before: keep what serves
      }
      if (target == null) {
        target = current; // gate failed or training not done: keep what serves, if anything
      }
      boolean isReady = deployment != null && target != null && isReady(deployment, run(target));
      serving.readyReplicas =
          deployment == null || deployment.getStatus() == null
              ? null
              : Objects.requireNonNullElse(deployment.getStatus().getReadyReplicas(), 0);

      if (target == null) {
        servingCondition = new Verdict(false, notServingReason(trained), "nothing to serve yet");
        ready = new Verdict(false, notServingReason(trained), readyMessage(trained));
        return outcome(new Workload.Unchanged(), null);
      }

      ServingOutcome canary = canary(current, target);
      if (canary != null) {
        return canary;
      }

      if (target.equals(current) && serving.rollout == null) {
        // Steady state: keep the Deployment on the serving adapter (serving-only changes such as
        // replicas still update it).
        if (isReady) {
          servingCondition = new Verdict(true, "Serving", "serving adapter " + current.uri());
          servingMessage = "serving " + current.uri() + " at " + serving.endpoint;
        } else {
          servingCondition = new Verdict(false, "NotReady", "serving pods are not ready");
        }
        boolean latest = candidate != null && candidate.equals(current);
        if (isReady && latest) {
          ready =
              new Verdict(true, "Serving", "the tuned adapter is served at " + serving.endpoint);
        } else if (candidate != null
            && candidate.digest().equals(serving.failedAdapterDigest)
            && rolledBackCanary(candidate)) {
          servingCondition = new Verdict(isReady, "CanaryRolledBack", serving.canary.message);
          ready = new Verdict(false, "CanaryRolledBack", serving.canary.message);
        } else if (candidate != null && candidate.digest().equals(serving.failedAdapterDigest)) {
          ready =
              new Verdict(
                  false,
                  "RolloutFailed",
                  "adapter "
                      + candidate.uri()
                      + " did not become ready; still serving "
                      + current.uri());
        } else {
          ready =
              new Verdict(
                  false,
                  isReady ? notServingReason(trained) : "NotReady",
                  isReady ? readyMessage(trained) : "serving pods are not ready");
        }
        return outcome(run(current), null);
      }

      // A rollout to target.
      RolloutStatus rollout = serving.rollout;
      if (rollout == null || !target.digest().equals(rollout.adapterDigest)) {
        // Record the intent before touching the Deployment.
        rollout = new RolloutStatus();
        rollout.adapterUri = target.uri();
        rollout.adapterDigest = target.digest();
        rollout.startedAt = nowText;
        serving.rollout = rollout;
        setRollingOut(current, target);
        Adapter running = deployment == null ? null : ServingModel.adapterOf(deployment);
        return outcome(
            running == null ? new Workload.Unchanged() : run(running), Duration.ofSeconds(1));
      }
      if (isReady) {
        serving.adapterUri = target.uri();
        serving.adapterDigest = target.digest();
        serving.rollout = null;
        servingCondition = new Verdict(true, "Serving", "serving adapter " + target.uri());
        ready = new Verdict(true, "Serving", "the tuned adapter is served at " + serving.endpoint);
        servingMessage = "serving " + target.uri() + " at " + serving.endpoint;
        return outcome(run(target), null);
      }
      Duration timeout = model.readinessTimeout();
      Instant deadline = Instant.parse(rollout.startedAt).plus(timeout);
      if (now.isAfter(deadline)) {
        serving.failedAdapterDigest = target.digest();
        serving.rollout = null;
        String why = "adapter " + target.uri() + " did not become ready within " + format(timeout);
        if (current != null) {
          servingCondition =
              new Verdict(true, "RolledBack", why + "; rolled back to " + current.uri());
          ready = new Verdict(false, "RolloutFailed", why + "; still serving " + current.uri());
          servingMessage = why + "; rolled back to " + current.uri();
          return outcome(run(current), null);
        }
        servingCondition = new Verdict(false, "RolloutFailed", why);
        ready = new Verdict(false, "RolloutFailed", why);
        return outcome(run(target), null);
      }
      setRollingOut(current, target);
      Duration left = Duration.between(now, deadline);
      return outcome(
          run(target), left.compareTo(ROLLOUT_POLL) < 0 ? left.plusSeconds(1) : ROLLOUT_POLL);
    }

    /**
     * The canary path (serving.canary set): starts a canary, follows one in flight, or ends it.
     * Null when the plain rollout decides (no canary configured, nothing served yet, a canary
     * already decided).
     */
    ServingOutcome canary(Adapter current, Adapter target) {
      CanaryStatus canary = serving.canary;
      boolean enabled = ServingModel.canaryEnabled(model.serving());
      if (canary != null && canary.decision == CanaryDecision.Observing) {
        if (!enabled) {
          // serving.canary was removed: the canary ends, the plain rollout takes over.
          serving.canary = null;
          return null;
        }
        if (current == null || !target.digest().equals(canary.adapterDigest)) {
          String why =
              "superseded: the canary's adapter is no longer the promoted result of the latest"
                  + " training run";
          return endCanary(current, CanaryDecision.RolledBack, why, false);
        }
        return follow(current, target, canary);
      }
      // Identical weights (same digest from another run's folder) have nothing to compare: the
      // plain rollout just moves serving to the new folder.
      if (enabled
          && current != null
          && !target.digest().equals(current.digest())
          && serving.rollout == null
          && deployment != null
          && isReady(deployment, run(current))) {
        // Record the canary before the Deployment changes; the next reconcile adds it.
        CanaryStatus started = new CanaryStatus();
        started.adapterUri = target.uri();
        started.adapterDigest = target.digest();
        started.weight = ServingModel.canaryWeight(model.serving());
        started.startedAt = now.toString();
        started.requests = 0L;
        started.errors = 0L;
        started.stableRequests = 0L;
        started.stableErrors = 0L;
        started.decision = CanaryDecision.Observing;
        started.message = "starting: " + target.uri() + " answers " + started.weight + "%";
        serving.canary = started;
        if (target.uri().equals(current.uri())) {
          // Each training run exports into its own folder (final/<trainingRevision>/), so this
          // happens only when a run has the revision of the served one (restartNonce set back to
          // that run's value, with its training fields): it exported into the served adapter's
          // folder and overwrote its files, so no pod can load the served one (its digest check
          // fails) next to the canary. Refused at once rather than after readinessTimeout.
          return endCanary(
              current,
              CanaryDecision.RolledBack,
              "refused: the new run exported into "
                  + target.uri()
                  + ", the folder of the adapter that is serving (digest "
                  + current.digest()
                  + "), which it overwrote: its training revision is the serving run's (the same"
                  + " training fields and spec.restartNonce); retrain with a spec.restartNonce"
                  + " not used before, or remove serving.canary to roll the new adapter out"
                  + " without a canary",
              true);
        }
        observingVerdicts(current, started);
        return outcome(run(current), Duration.ofSeconds(1));
      }
      return null;
    }

    /** A canary in flight: wait for its pods, count its requests, decide. */
    ServingOutcome follow(Adapter current, Adapter target, CanaryStatus canary) {
      Workload.Run both = runWithCanary(current, new Canary(target, canary.weight));
      Instant startedAt = Instant.parse(canary.startedAt);
      if (deployment == null || !isReady(deployment, both)) {
        Duration timeout = model.readinessTimeout();
        Instant deadline = startedAt.plus(timeout);
        if (now.isAfter(deadline)) {
          return endCanary(
              current,
              CanaryDecision.RolledBack,
              "the canary's pods did not become ready within " + format(timeout),
              true);
        }
        canary.message = "waiting for the serving pods with the canary to become ready";
        observingVerdicts(current, canary);
        return outcome(both, poll(deadline));
      }
      CanaryDecider.Tally tally =
          variants.isEmpty()
              ? new CanaryDecider.Tally(
                  Objects.requireNonNullElse(canary.requests, 0L),
                  Objects.requireNonNullElse(canary.errors, 0L),
                  Objects.requireNonNullElse(canary.stableRequests, 0L),
                  Objects.requireNonNullElse(canary.stableErrors, 0L))
              : CanaryDecider.Tally.of(variants, model.name(), current.digest(), target.digest());
      canary.requests = tally.requests();
      canary.errors = tally.errors();
      canary.stableRequests = tally.stableRequests();
      canary.stableErrors = tally.stableErrors();
      Duration duration = ServingModel.canaryDuration(model.serving());
      CanaryDecider.Decision decision =
          CanaryDecider.decide(
              tally, startedAt, duration, ServingModel.canaryMaxErrorRate(model.serving()), now);
      switch (decision.decision()) {
        case Observing -> {
          canary.message = decision.message();
          observingVerdicts(current, canary);
          return outcome(both, poll(startedAt.plus(duration)));
        }
        case Promoted -> {
          canary.decision = CanaryDecision.Promoted;
          canary.decidedAt = now.toString();
          canary.message = decision.message();
          // Record the rollout to the canary alone before the Deployment changes: this
          // reconcile keeps both variants, the next one follows the plain rollout to the canary.
          RolloutStatus rollout = new RolloutStatus();
          rollout.adapterUri = target.uri();
          rollout.adapterDigest = target.digest();
          rollout.startedAt = now.toString();
          serving.rollout = rollout;
          servingCondition =
              new Verdict(
                  true,
                  "CanaryPromoted",
                  "canary " + target.uri() + " " + decision.message() + "; rolling it out");
          ready = new Verdict(false, "RollingOut", "rolling out " + target.uri());
          servingMessage = "serving " + current.uri() + " at " + serving.endpoint;
          return outcome(both, Duration.ofSeconds(1));
        }
        default -> {
          return endCanary(current, CanaryDecision.RolledBack, decision.message(), true);
        }
      }
    }

    /**
     * Ends a canary: the Deployment goes back to the stable adapter alone at once (safety first:
     * the canary stops answering with this write). {@code failed} remembers the digest so the same
     * adapter is not tried again until a new training run.
     */
    ServingOutcome endCanary(Adapter current, CanaryDecision decision, String why, boolean failed) {
      CanaryStatus canary = serving.canary;
      canary.decision = decision;
      canary.decidedAt = now.toString();
      canary.message =
          why + "; " + (current == null ? "nothing" : current.uri()) + " keeps serving";
      if (failed) {
        serving.failedAdapterDigest = canary.adapterDigest;
      }
      if (current == null) {
        servingCondition = new Verdict(false, "CanaryRolledBack", canary.message);
        ready = new Verdict(false, "CanaryRolledBack", canary.message);
        return outcome(new Workload.Unchanged(), null);
      }
      servingCondition = new Verdict(true, "CanaryRolledBack", canary.message);
      ready = new Verdict(false, "CanaryRolledBack", canary.message);
      servingMessage = "serving " + current.uri() + " at " + serving.endpoint;
      return outcome(run(current), null);
    }

    void observingVerdicts(Adapter current, CanaryStatus canary) {
      String text =
          "serving "
              + current.uri()
              + "; canary "
              + canary.adapterUri
              + " answers "
              + canary.weight
              + "% of requests: "
              + canary.message;
      servingCondition = new Verdict(true, "CanaryObserving", text);
      ready = new Verdict(false, "CanaryObserving", text);
      servingMessage = "serving " + current.uri() + " at " + serving.endpoint + " with a canary";
    }

    boolean rolledBackCanary(Adapter candidate) {
      return serving.canary != null
          && serving.canary.decision == CanaryDecision.RolledBack
          && candidate.digest().equals(serving.canary.adapterDigest);
    }

    /** Look again at the poll interval, or just after {@code deadline} if it comes first. */
    Duration poll(Instant deadline) {
      Duration left = Duration.between(now, deadline);
      if (left.isNegative()) {
        return ROLLOUT_POLL;
      }
      return left.compareTo(ROLLOUT_POLL) < 0 ? left.plusSeconds(1) : ROLLOUT_POLL;
    }

    /** The Deployment running {@code adapter} with {@code canary} next to it. */
    Workload.Run runWithCanary(Adapter adapter, Canary canary) {
      return new Workload.Run(adapter, ServingModel.deployment(model, adapter, canary));
    }

    /** The Deployment running {@code adapter}: built once per adapter in this decision. */
    Workload.Run run(Adapter adapter) {
      return new Workload.Run(
          adapter, desired.computeIfAbsent(adapter, a -> ServingModel.deployment(model, a)));
    }

    ServingOutcome outcome(Workload workload, Duration requeueAfter) {
      return new ServingOutcome(
          serving, servingCondition, ready, servingMessage, workload, requeueAfter);
    }

    void setRollingOut(Adapter current, Adapter target) {
      servingCondition =
          current != null
              ? new Verdict(
                  true,
                  "RollingOut",
                  "serving " + current.uri() + " while rolling out " + target.uri())
              : new Verdict(false, "RollingOut", "rolling out " + target.uri());
      ready = new Verdict(false, "RollingOut", "rolling out " + target.uri());
    }
  }

  /** The adapter training produced, if it passed the gate. */
  static Adapter promotedAdapter(FineTuneJobStatus status) {
    AdapterStatus adapter = status.adapter;
    if (adapter == null
        || adapter.uri == null
        || !Conditions.isTrue(status.conditions, Conditions.PROMOTED)) {
      return null;
    }
    // Without a digest from the trainer, the run's revision stands in for it.
    String digest = adapter.digest != null ? adapter.digest : "revision-" + status.trainingRevision;
    return new Adapter(adapter.uri, digest);
  }

  /** The Deployment runs the wanted one (same spec hash), and all its pods are ready. */
  static boolean isReady(Deployment deployment, Workload.Run wanted) {
    if (!Objects.equals(ServingModel.hashOf(wanted.deployment()), ServingModel.hashOf(deployment))
        || deployment.getStatus() == null) {
      return false;
    }
    var s = deployment.getStatus();
    Long generation = deployment.getMetadata().getGeneration();
    if (generation != null
        && (s.getObservedGeneration() == null || s.getObservedGeneration() < generation)) {
      return false; // the status does not describe the current spec yet
    }
    int replicas = Objects.requireNonNullElse(deployment.getSpec().getReplicas(), 1);
    return Objects.requireNonNullElse(s.getUpdatedReplicas(), 0) >= replicas
        && Objects.requireNonNullElse(s.getAvailableReplicas(), 0) >= replicas
        && Objects.requireNonNullElse(s.getReadyReplicas(), 0) >= replicas
        && Objects.requireNonNullElse(s.getReplicas(), 0) <= replicas;
  }

  private static String notServingReason(FineTuneJobStatus status) {
    var promoted = Conditions.find(status.conditions, Conditions.PROMOTED);
    if (promoted != null && "False".equals(promoted.getStatus())) {
      return promoted.getReason();
    }
    return status.phase == null ? "Pending" : status.phase.name();
  }

  private static String readyMessage(FineTuneJobStatus status) {
    var promoted = Conditions.find(status.conditions, Conditions.PROMOTED);
    if (promoted != null && "False".equals(promoted.getStatus())) {
      return "not served: " + promoted.getMessage();
    }
    return "the FineTuneJob has not reached its goal";
  }

  private static String format(Duration d) {
    long s = d.toSeconds();
    return s % 60 == 0 ? (s / 60) + "m" : s + "s";
  }
}
