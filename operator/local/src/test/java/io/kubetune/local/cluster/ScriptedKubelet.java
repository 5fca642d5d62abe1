package io.kubetune.local.cluster;

import io.fabric8.kubernetes.api.model.BindingBuilder;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.trainer.TrainerTermination;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import io.kubetune.operator.support.Json;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Function;

/**
 * Plays the kubelet (and nothing else) for the pods Kubernetes' own Job and ReplicaSet controllers
 * create, in the namespaces a test hands it; scripted, it runs no process:
 *
 * <ul>
 *   <li>a new pod is bound to {@link #NODE} (pods/binding, as the scheduler would) and started:
 *       phase Running, its container running;
 *   <li>and Ready (a trainer has no readiness probe), except a serving pod whose adapter digest was
 *       declared {@link #neverReady};
 *   <li>a training pod stays Running until the test makes its trainer exit ({@link #exit}) or
 *       disrupts it ({@link #disrupt});
 *   <li>a pod with a deletionTimestamp is stopped as a kubelet stops it after SIGTERM (a trainer
 *       commits a checkpoint and exits with {@link TrainerExitCodes#PREEMPTED}, a server exits 0),
 *       its terminal status written, then deleted with grace period 0.
 * </ul>
 *
 * It registers its Node ({@link #NODE}, Ready), as a kubelet does: the EndpointSlice controller
 * leaves out pods whose node it cannot find. No kubelet serves that node's port, so pods/log fails
 * for its pods (the operator reads no progress then; its status comes from pod status).
 */
final class ScriptedKubelet implements AutoCloseable {
  static final String NODE = "scripted-node";
  private static final String POD_IP = "10.244.0.10";

  private final KubernetesClient client;
  private final Set<String> namespaces = ConcurrentHashMap.newKeySet();
  private final Set<String> neverReadyDigests = ConcurrentHashMap.newKeySet();
  private final List<String> errors = java.util.Collections.synchronizedList(new ArrayList<>());
  // One thread: events of one pod are handled in order, and no two writes of it race.
  private final ExecutorService worker = Executors.newSingleThreadExecutor();
  private final SharedIndexInformer<Pod> informer;

  ScriptedKubelet(KubernetesClient client) {
    this.client = client;
    registerNode();
    this.informer =
        client
            .pods()
            .inAnyNamespace()
            .inform(
                new ResourceEventHandler<>() {
                  @Override
                  public void onAdd(Pod pod) {
                    submit(pod);
                  }

                  @Override
                  public void onUpdate(Pod old, Pod pod) {
                    submit(pod);
                  }

                  @Override
                  public void onDelete(Pod pod, boolean finalStateUnknown) {}
                },
                0);
  }

  private void registerNode() {
    if (client.nodes().withName(NODE).get() != null) {
      return;
    }
    Node node =
        client
            .nodes()
            .resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata().build())
            .create();
    node.setStatus(
        new NodeStatusBuilder()
            .addNewAddress()
            .withType("InternalIP")
            .withAddress("127.0.0.1")
            .endAddress()
            .addNewCondition()
            .withType("Ready")
            .withStatus("True")
            .withReason("KubeletReady")
            .withMessage("scripted kubelet")
            .withLastHeartbeatTime(now())
            .withLastTransitionTime(now())
            .endCondition()
            .build());
    client.nodes().resource(node).updateStatus();
  }

  /** Runs the pods of {@code namespace} from now on. */
  void manage(String namespace) {
    namespaces.add(namespace);
    informer.getStore().list().stream()
        .filter(p -> namespace.equals(p.getMetadata().getNamespace()))
        .forEach(this::submit);
  }

  /** Serving pods whose adapter has this digest never pass their readiness probe. */
  void neverReady(String adapterDigest) {
    neverReadyDigests.add(adapterDigest);
  }

  /** Problems the kubelet met (a write the API server refused), for the test to assert on. */
  List<String> errors() {
    return List.copyOf(errors);
  }

  /**
   * The trainer of {@code pod} exits with {@code exitCode} after writing {@code termination} to its
   * termination-message file; the pod becomes Succeeded (0) or Failed.
   */
  void exit(Pod pod, int exitCode, TrainerTermination termination) {
    String message = Json.canonical(termination);
    updateStatus(
        pod,
        current ->
            terminated(
                current.getStatus(), exitCode, exitCode == 0 ? "Completed" : "Error", message));
  }

  /**
   * The pod is preempted: condition DisruptionTarget (as the scheduler sets it before evicting),
   * and the trainer, on SIGTERM, commits a checkpoint and exits with 4.
   */
  void disrupt(Pod pod) {
    updateStatus(
        pod,
        current -> {
          PodStatus stopped =
              terminated(
                  current.getStatus(),
                  TrainerExitCodes.PREEMPTED,
                  "Error",
                  preempted("preempted: checkpoint committed"));
          List<PodCondition> conditions = new ArrayList<>(stopped.getConditions());
          conditions.add(
              condition(
                  "DisruptionTarget",
                  "True",
                  "PreemptionByScheduler",
                  "preempted to make room for a higher-priority pod"));
          stopped.setConditions(conditions);
          return stopped;
        });
  }

  @Override
  public void close() {
    informer.close();
    worker.shutdownNow();
  }

  private void submit(Pod pod) {
    if (namespaces.contains(pod.getMetadata().getNamespace())) {
      worker.execute(() -> handle(pod.getMetadata().getNamespace(), pod.getMetadata().getName()));
    }
  }

  private void handle(String namespace, String name) {
    try {
      Pod pod = client.pods().inNamespace(namespace).withName(name).get();
      if (pod == null) {
        return;
      }
      String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
      boolean terminal = "Succeeded".equals(phase) || "Failed".equals(phase);
      if (pod.getMetadata().getDeletionTimestamp() != null) {
        if (!terminal && pod.getSpec().getNodeName() != null) {
          pod = stopOnSigterm(pod);
        }
        if (pod.getMetadata().getDeletionGracePeriodSeconds() == null
            || pod.getMetadata().getDeletionGracePeriodSeconds() > 0) {
          client.pods().inNamespace(namespace).withName(name).withGracePeriod(0).delete();
        }
      } else if (pod.getSpec().getNodeName() == null) {
        client
            .bindings()
            .inNamespace(namespace)
            .resource(
                new BindingBuilder()
                    .withNewMetadata()
                    .withName(name)
                    .endMetadata()
                    .withNewTarget()
                    .withKind("Node")
                    .withName(NODE)
                    .endTarget()
                    .build())
            .create();
      } else if (phase == null || "Pending".equals(phase)) {
        // Started once: a status the test wrote meanwhile (an exit) is never overwritten.
        updateStatus(pod, current -> isPending(current) ? started(current) : current.getStatus());
      }
    } catch (KubernetesClientException e) {
      if (e.getCode() != 404) {
        errors.add(namespace + "/" + name + ": " + e.getMessage());
      }
    }
  }

  /** SIGTERM: the trainer commits a checkpoint and exits with 4; a server stops with 0. */
  private Pod stopOnSigterm(Pod pod) {
    if (isTrainer(pod)) {
      return updateStatus(
          pod,
          current ->
              terminated(
                  current.getStatus(),
                  TrainerExitCodes.PREEMPTED,
                  "Error",
                  preempted("stopped by SIGTERM: checkpoint committed")));
    }
    return updateStatus(pod, current -> terminated(current.getStatus(), 0, "Completed", null));
  }

  private PodStatus started(Pod pod) {
    String now = now();
    // A trainer has no readiness probe: ready once running. A server is ready when its probe
    // passes, which a never-ready adapter's never does.
    boolean ready = isTrainer(pod) || !neverReadyDigests.contains(adapterDigest(pod));
    PodStatus status = new PodStatus();
    status.setPhase("Running");
    status.setHostIP("127.0.0.1");
    status.setPodIP(POD_IP);
    status.setStartTime(now);
    status.setConditions(
        List.of(
            condition("PodScheduled", "True", null, null),
            condition("Initialized", "True", null, null),
            condition("ContainersReady", ready ? "True" : "False", null, null),
            condition("Ready", ready ? "True" : "False", null, null)));
    List<ContainerStatus> containers = new ArrayList<>();
    for (var c : pod.getSpec().getContainers()) {
      containers.add(
          new ContainerStatusBuilder()
              .withName(c.getName())
              .withImage(c.getImage())
              .withImageID(c.getImage())
              .withContainerID("scripted://" + pod.getMetadata().getUid() + "/" + c.getName())
              .withReady(ready)
              .withStarted(true)
              .withRestartCount(0)
              .withNewState()
              .withNewRunning()
              .withStartedAt(now)
              .endRunning()
              .endState()
              .build());
    }
    status.setContainerStatuses(containers);
    return status;
  }

  private static PodStatus terminated(
      PodStatus status, int exitCode, String reason, String message) {
    String now = now();
    PodStatus next = status == null ? new PodStatus() : status;
    next.setPhase(exitCode == 0 ? "Succeeded" : "Failed");
    List<PodCondition> conditions = new ArrayList<>();
    for (PodCondition c :
        next.getConditions() == null ? List.<PodCondition>of() : next.getConditions()) {
      if ("Ready".equals(c.getType()) || "ContainersReady".equals(c.getType())) {
        conditions.add(condition(c.getType(), "False", "PodCompleted", null));
      } else {
        conditions.add(c);
      }
    }
    next.setConditions(conditions);
    for (ContainerStatus cs : next.getContainerStatuses()) {
      String startedAt =
          cs.getState() != null && cs.getState().getRunning() != null
              ? cs.getState().getRunning().getStartedAt()
              : now;
      cs.setReady(false);
      cs.setStarted(false);
      cs.setState(
          new io.fabric8.kubernetes.api.model.ContainerStateBuilder()
              .withNewTerminated()
              .withExitCode(exitCode)
              .withReason(reason)
              .withMessage(message)
              .withStartedAt(startedAt)
              .withFinishedAt(now)
              .withContainerID(cs.getContainerID())
              .endTerminated()
              .build());
    }
    return next;
  }

  private static String preempted(String message) {
    TrainerTermination termination = new TrainerTermination();
    termination.reason = "Preempted";
    termination.message = message;
    return Json.canonical(termination);
  }

  /** Status writes retry on a conflict with the Job controller (it edits the pod's finalizers). */
  private Pod updateStatus(Pod pod, Function<Pod, PodStatus> change) {
    String namespace = pod.getMetadata().getNamespace();
    String name = pod.getMetadata().getName();
    for (int attempt = 0; ; attempt++) {
      Pod current = client.pods().inNamespace(namespace).withName(name).get();
      if (current == null) {
        return pod;
      }
      current.setStatus(change.apply(current));
      try {
        return client.pods().inNamespace(namespace).resource(current).updateStatus();
      } catch (KubernetesClientException e) {
        if (e.getCode() != 409 || attempt >= 10) {
          throw e;
        }
      }
    }
  }

  private static boolean isPending(Pod pod) {
    return pod.getStatus() == null
        || pod.getStatus().getPhase() == null
        || "Pending".equals(pod.getStatus().getPhase());
  }

  private static boolean isTrainer(Pod pod) {
    return pod.getSpec().getContainers().stream()
        .anyMatch(c -> Names.TRAINER_CONTAINER.equals(c.getName()));
  }

  private static String adapterDigest(Pod pod) {
    Map<String, String> annotations = pod.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(Labels.ADAPTER_DIGEST_ANNOTATION);
  }

  private static PodCondition condition(String type, String status, String reason, String msg) {
    return new PodConditionBuilder()
        .withType(type)
        .withStatus(status)
        .withReason(reason)
        .withMessage(msg)
        .withLastTransitionTime(now())
        .build();
  }

  private static String now() {
    return Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
  }
}
