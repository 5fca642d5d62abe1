package io.kubetune.operator.status;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.kubetune.api.v1alpha1.AdapterStatus;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.api.v1alpha1.RolloutStatus;
import io.kubetune.api.v1alpha1.ServingStatus;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.Json;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.ServingModel.Adapter;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * The serving state machine, pure: from the training result (status.adapter and the Promoted
 * condition), the previous serving status and the observed Deployment it decides which adapter the
 * Deployment should run and what status says.
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
 * </ul>
 */
public final class ServingRollout {
  /** Re-check a rollout at least this often, to notice the readiness timeout. */
  static final Duration ROLLOUT_POLL = Duration.ofSeconds(10);

  /**
   * What to do.
   *
   * @param deploymentAdapter the adapter the Deployment must run, or null for no Deployment
   * @param deleteServing remove Deployment and Service (serving disabled)
   * @param requeueAfter when to look again, or null
   */
  public record Decision(Adapter deploymentAdapter, boolean deleteServing, Duration requeueAfter) {}

  private ServingRollout() {}

  /** Decides and writes status.serving, the Serving and Ready conditions and the phase. */
  public static Decision apply(
      FineTuneJob cr,
      FineTuneJobStatus status,
      Deployment deployment,
      OperatorSettings settings,
      Instant now) {
    Long generation = cr.getMetadata().getGeneration();
    String nowText = now.toString();
    var spec = cr.getSpec() == null ? null : cr.getSpec().serving;
    boolean enabled = spec != null && Boolean.TRUE.equals(spec.enabled);
    if (!enabled) {
      status.serving = null;
      status.conditions.removeIf(c -> Conditions.SERVING.equals(c.getType()));
      return new Decision(null, true, null);
    }

    ServingStatus serving =
        status.serving == null
            ? new ServingStatus()
            : Json.copy(status.serving, ServingStatus.class);
    status.serving = serving;
    serving.endpoint = Names.servingEndpoint(cr);
    serving.model = cr.getMetadata().getName();
    Adapter current =
        serving.adapterDigest == null
            ? null
            : new Adapter(serving.adapterUri, serving.adapterDigest);
    Adapter candidate = promotedAdapter(status);
    Adapter target = candidate;
    if (target != null && target.digest().equals(serving.failedAdapterDigest)) {
      target = current; // this adapter failed to become ready before: keep what serves
    }
    if (target == null) {
      target = current; // gate failed or training not done: keep what serves, if anything
    }
    boolean ready = deployment != null && isReady(deployment, cr, target, settings);
    serving.readyReplicas =
        deployment == null || deployment.getStatus() == null
            ? null
            : Objects.requireNonNullElse(deployment.getStatus().getReadyReplicas(), 0);
    ConditionSetter set =
        (type, value, reason, message) ->
            status.conditions =
                Conditions.set(
                    status.conditions, type, value, reason, message, generation, nowText);

    if (target == null) {
      set.set(Conditions.SERVING, false, notServingReason(status), "nothing to serve yet");
      set.set(Conditions.READY, false, notServingReason(status), readyMessage(status));
      return new Decision(null, false, null);
    }

    if (target.equals(current) && serving.rollout == null) {
      // Steady state: keep the Deployment on the serving adapter (serving-only changes such as
      // replicas still update it).
      if (ready) {
        set.set(Conditions.SERVING, true, "Serving", "serving adapter " + current.uri());
        status.phase = Phase.Serving;
        status.message = "serving " + current.uri() + " at " + serving.endpoint;
      } else {
        set.set(Conditions.SERVING, false, "NotReady", "serving pods are not ready");
      }
      boolean latest = candidate != null && candidate.equals(current);
      if (ready && latest) {
        set.set(
            Conditions.READY,
            true,
            "Serving",
            "the tuned adapter is served at " + serving.endpoint);
      } else if (candidate != null && candidate.digest().equals(serving.failedAdapterDigest)) {
        set.set(
            Conditions.READY,
            false,
            "RolloutFailed",
            "adapter " + candidate.uri() + " did not become ready; still serving " + current.uri());
      } else {
        set.set(
            Conditions.READY,
            false,
            ready ? notServingReason(status) : "NotReady",
            ready ? readyMessage(status) : "serving pods are not ready");
      }
      return new Decision(current, false, null);
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
      setRollingOut(set, current, target);
      return new Decision(
          deployment == null ? null : ServingModel.adapterOf(deployment),
          false,
          Duration.ofSeconds(1));
    }
    if (ready) {
      serving.adapterUri = target.uri();
      serving.adapterDigest = target.digest();
      serving.rollout = null;
      set.set(Conditions.SERVING, true, "Serving", "serving adapter " + target.uri());
      set.set(
          Conditions.READY, true, "Serving", "the tuned adapter is served at " + serving.endpoint);
      status.phase = Phase.Serving;
      status.message = "serving " + target.uri() + " at " + serving.endpoint;
      return new Decision(target, false, null);
    }
    Duration timeout = ServingModel.readinessTimeout(spec);
    Instant deadline = Instant.parse(rollout.startedAt).plus(timeout);
    if (now.isAfter(deadline)) {
      serving.failedAdapterDigest = target.digest();
      serving.rollout = null;
      String why = "adapter " + target.uri() + " did not become ready within " + format(timeout);
      if (current != null) {
        set.set(Conditions.SERVING, true, "RolledBack", why + "; rolled back to " + current.uri());
        set.set(Conditions.READY, false, "RolloutFailed", why + "; still serving " + current.uri());
        status.phase = Phase.Serving;
        status.message = why + "; rolled back to " + current.uri();
        return new Decision(current, false, null);
      }
      set.set(Conditions.SERVING, false, "RolloutFailed", why);
      set.set(Conditions.READY, false, "RolloutFailed", why);
      return new Decision(target, false, null);
    }
    setRollingOut(set, current, target);
    Duration left = Duration.between(now, deadline);
    return new Decision(
        target, false, left.compareTo(ROLLOUT_POLL) < 0 ? left.plusSeconds(1) : ROLLOUT_POLL);
  }

  private interface ConditionSetter {
    void set(String type, boolean value, String reason, String message);
  }

  private static void setRollingOut(ConditionSetter set, Adapter current, Adapter target) {
    if (current != null) {
      set.set(
          Conditions.SERVING,
          true,
          "RollingOut",
          "serving " + current.uri() + " while rolling out " + target.uri());
    } else {
      set.set(Conditions.SERVING, false, "RollingOut", "rolling out " + target.uri());
    }
    set.set(Conditions.READY, false, "RollingOut", "rolling out " + target.uri());
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

  /** The Deployment runs {@code adapter} with the wanted spec, and all its pods are ready. */
  static boolean isReady(
      Deployment deployment, FineTuneJob cr, Adapter adapter, OperatorSettings settings) {
    String wanted = ServingModel.hashOf(ServingModel.deployment(cr, adapter, settings));
    if (!Objects.equals(wanted, ServingModel.hashOf(deployment))
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
