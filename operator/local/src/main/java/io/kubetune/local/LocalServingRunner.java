package io.kubetune.local;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.operator.Labels;
import io.kubetune.operator.support.Hashes;
import io.kubetune.operator.support.Json;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A development aid that plays the Deployment controller and the kubelet for the serving
 * Deployments the operator creates: it runs each replica of the pod template as a local {@code
 * trainer serve} process on a free port of 127.0.0.1 (a pod's own network namespace is what lets
 * every pod use port 8000 on a cluster), probes {@code /health/ready} as the readiness probe does,
 * and writes Pod and Deployment status back (replicas, updated, ready, available, observed
 * generation). A changed template rolls like a RollingUpdate with maxUnavailable 0: the new pods
 * start next to the old ones, and the old ones stop once every new one is ready. A serving process
 * that exits is restarted with a growing delay, as CrashLoopBackOff.
 */
final class LocalServingRunner implements AutoCloseable {
  private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(2);

  private final KubernetesClient client;
  private final Path stateDir;
  private final ContainerLauncher launcher;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(PROBE_TIMEOUT).build();
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor();

  /** Running replicas by pod name. */
  private final Map<String, Replica> replicas = new ConcurrentHashMap<>();

  private volatile boolean closed;
  private int podCounter;

  /** One serving pod: its local process, port and readiness. */
  private static final class Replica {
    String deploymentUid;
    String namespace;
    String templateHash;
    Pod pod;
    Path podDir;
    Process process;
    int port;
    boolean ready;
    int restarts;
    Instant restartAt;
    String lastError;
  }

  LocalServingRunner(
      KubernetesClient client,
      Path stateDir,
      Map<String, Path> claimFolders,
      Path trainerLauncher) {
    this.client = client;
    this.stateDir = stateDir;
    this.launcher = new ContainerLauncher(client, stateDir, claimFolders, trainerLauncher);
  }

  void start() {
    loop.scheduleWithFixedDelay(this::tickSafely, 0, 500, TimeUnit.MILLISECONDS);
  }

  /**
   * Where a Service's traffic goes in local mode: {@code http://127.0.0.1:<port>} of a ready pod
   * the Service selects, as kube-proxy would route it.
   */
  Optional<String> endpointOf(String namespace, String serviceName) {
    Service service = client.services().inNamespace(namespace).withName(serviceName).get();
    if (service == null || service.getSpec() == null || service.getSpec().getSelector() == null) {
      return Optional.empty();
    }
    Map<String, String> selector = service.getSpec().getSelector();
    return replicas.values().stream()
        .filter(r -> r.ready && r.namespace.equals(namespace))
        .filter(r -> r.pod.getMetadata().getLabels().entrySet().containsAll(selector.entrySet()))
        .map(r -> "http://127.0.0.1:" + r.port)
        .findFirst();
  }

  /** The last start-up error of a serving pod (its stderr tail), for the summary; or null. */
  String lastError() {
    return replicas.values().stream()
        .map(r -> r.lastError)
        .filter(Objects::nonNull)
        .findFirst()
        .orElse(null);
  }

  private void tickSafely() {
    try {
      tick();
    } catch (RuntimeException e) {
      if (!closed) {
        System.err.println("local serving runner: " + e);
      }
    }
  }

  private void tick() {
    List<Deployment> deployments =
        client
            .apps()
            .deployments()
            .inAnyNamespace()
            .withLabel(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
            .list()
            .getItems();
    Set<String> live = new HashSet<>();
    for (Deployment deployment : deployments) {
      live.add(deployment.getMetadata().getUid());
      reconcile(deployment);
    }
    // Deployments deleted (serving disabled, FineTuneJob gone): stop their pods, as the garbage
    // collector and the kubelet would.
    for (Replica r : List.copyOf(replicas.values())) {
      if (!live.contains(r.deploymentUid)) {
        remove(r);
      }
    }
  }

  private void reconcile(Deployment deployment) {
    String uid = deployment.getMetadata().getUid();
    String namespace = deployment.getMetadata().getNamespace();
    PodSpec template = deployment.getSpec().getTemplate().getSpec();
    String hash = Hashes.sha256Hex(Json.canonical(deployment.getSpec().getTemplate()), 8);
    int wanted = Objects.requireNonNullElse(deployment.getSpec().getReplicas(), 1);

    List<Replica> mine =
        replicas.values().stream().filter(r -> r.deploymentUid.equals(uid)).toList();
    List<Replica> current = mine.stream().filter(r -> r.templateHash.equals(hash)).toList();
    List<Replica> old = mine.stream().filter(r -> !r.templateHash.equals(hash)).toList();

    for (int i = current.size(); i < wanted; i++) {
      Replica r = create(deployment, hash);
      if (r == null) {
        return;
      }
    }
    for (int i = wanted; i < current.size(); i++) {
      remove(current.get(i));
    }
    current =
        replicas.values().stream()
            .filter(r -> r.deploymentUid.equals(uid) && r.templateHash.equals(hash))
            .toList();
    for (Replica r : current) {
      observe(r, namespace, template);
    }
    boolean allNewReady = current.size() >= wanted && current.stream().allMatch(r -> r.ready);
    if (allNewReady) {
      old.forEach(this::remove);
      old = List.of();
    } else {
      for (Replica r : old) {
        observe(r, namespace, template);
      }
    }
    int total = current.size() + old.size();
    int ready =
        (int)
            (current.stream().filter(r -> r.ready).count()
                + old.stream().filter(r -> r.ready).count());
    int updated = current.size();
    setDeploymentStatus(deployment, total, updated, ready);
  }

  private Replica create(Deployment deployment, String hash) {
    String namespace = deployment.getMetadata().getNamespace();
    String podName = deployment.getMetadata().getName() + "-" + (++podCounter);
    Container container = deployment.getSpec().getTemplate().getSpec().getContainers().get(0);
    Replica r = new Replica();
    r.deploymentUid = deployment.getMetadata().getUid();
    r.namespace = namespace;
    r.templateHash = hash;
    r.podDir = stateDir.resolve("pods").resolve(podName);
    Pod pod =
        ContainerLauncher.ownedPod(
            podName,
            deployment,
            deployment.getSpec().getTemplate(),
            Map.of("pod-template-hash", hash.substring(0, Math.min(10, hash.length()))),
            now());
    r.pod = client.resource(pod).create();
    replicas.put(podName, r);
    String unsupported = ContainerLauncher.unsupportedImage(container);
    if (unsupported != null) {
      r.lastError = unsupported;
      setPodStatus(r, "Pending", false, "LocalModeUnsupportedImage", unsupported);
      return r;
    }
    startProcess(r, namespace, deployment.getSpec().getTemplate().getSpec());
    return r;
  }

  private void startProcess(Replica r, String namespace, PodSpec spec) {
    try {
      r.port = freePort();
      r.process =
          launcher
              .launch(
                  namespace,
                  spec,
                  r.podDir,
                  "server",
                  ContainerLauncher.Output.FILES,
                  args -> withShutdownDelay(withPort(args, r.port)))
              .process();
      r.ready = false;
      setPodStatus(r, "Running", false, null, null);
    } catch (ContainerLauncher.MissingSecretException e) {
      r.lastError = e.getMessage();
      setPodStatus(r, "Pending", false, "CreateContainerConfigError", e.getMessage());
    } catch (IOException e) {
      r.lastError = e.toString();
      setPodStatus(r, "Pending", false, "RunContainerError", e.toString());
    }
  }

  /** Readiness probe and restarts of one replica. */
  private void observe(Replica r, String namespace, PodSpec spec) {
    if (r.process == null) {
      if (r.restartAt != null && Instant.now().isAfter(r.restartAt)) {
        r.restartAt = null;
        startProcess(r, namespace, spec);
      }
      return;
    }
    if (!r.process.isAlive()) {
      int code = r.process.exitValue();
      r.process = null;
      r.ready = false;
      r.restarts++;
      r.lastError = "exit code " + code + ": " + tail(r.podDir.resolve("server.stderr.log"));
      long delay = Math.min(60, 5L << Math.min(4, r.restarts - 1));
      r.restartAt = Instant.now().plusSeconds(delay);
      setPodStatus(r, "Running", false, "CrashLoopBackOff", r.lastError);
      return;
    }
    boolean ready = probe(r.port);
    if (ready != r.ready) {
      r.ready = ready;
      if (ready) {
        r.lastError = null;
      }
      setPodStatus(r, "Running", ready, null, null);
    }
  }

  private boolean probe(int port) {
    try {
      HttpResponse<Void> response =
          http.send(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health/ready"))
                  .timeout(PROBE_TIMEOUT)
                  .build(),
              HttpResponse.BodyHandlers.discarding());
      return response.statusCode() == 200;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private void remove(Replica r) {
    // Out of the Service's endpoints first (endpointOf no longer returns it), then SIGTERM: the
    // server keeps answering what was already routed to it for its shutdown delay, so a rollout
    // or a rollback fails no request.
    r.ready = false;
    stop(r);
    replicas.values().remove(r);
    try {
      client.resource(r.pod).delete();
    } catch (KubernetesClientException e) {
      // already gone
    }
  }

  private static void stop(Replica r) {
    Process process = r.process;
    r.process = null;
    if (process == null) {
      return;
    }
    ContainerLauncher.terminate(process, 15); // the server drains and exits
  }

  /**
   * A local replica leaves the endpoints before its SIGTERM (see {@link #remove}), so one second of
   * shutdown delay covers a request routed just before; unless the container sets its own.
   */
  static List<String> withShutdownDelay(List<String> args) {
    if (args.contains("--shutdown-delay-seconds")) {
      return args;
    }
    List<String> out = new ArrayList<>(args);
    out.add("--shutdown-delay-seconds");
    out.add("1");
    return out;
  }

  /**
   * What each ready pod of a serving Deployment reports on {@code GET /v1/variants} (its raw JSON
   * body, by pod name): how the operator reaches the pods in local mode, where each pod is a local
   * process on its own port instead of a pod IP with port 8000.
   */
  Map<String, String> variantsOf(String namespace, String deploymentName) {
    Map<String, String> out = new java.util.TreeMap<>();
    for (Replica r : List.copyOf(replicas.values())) {
      String owner =
          r.pod.getMetadata().getOwnerReferences() == null
                  || r.pod.getMetadata().getOwnerReferences().isEmpty()
              ? null
              : r.pod.getMetadata().getOwnerReferences().get(0).getName();
      if (!r.ready || !r.namespace.equals(namespace) || !deploymentName.equals(owner)) {
        continue;
      }
      try {
        HttpResponse<String> response =
            http.send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + r.port + "/v1/variants"))
                    .timeout(PROBE_TIMEOUT)
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200) {
          out.put(r.pod.getMetadata().getName(), response.body());
        }
      } catch (IOException e) {
        // not answering now: as an unreachable pod, left out
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    return out;
  }

  /**
   * {@link io.kubetune.operator.serving.ServingFacts} of local mode: the reports of the ready local
   * replicas of {@code deployment} (a body that is not a report is left out).
   */
  public List<VariantsReport> variants(KubernetesClient client, Deployment deployment) {
    List<VariantsReport> reports = new ArrayList<>();
    for (String body :
        variantsOf(deployment.getMetadata().getNamespace(), deployment.getMetadata().getName())
            .values()) {
      try {
        reports.add(VariantsReport.parse(body));
      } catch (IllegalArgumentException notAReport) {
        // as an unreachable pod: left out
      }
    }
    return reports;
  }

  /** The container's {@code --port N} replaced by this replica's local port. */
  static List<String> withPort(List<String> args, int port) {
    List<String> out = new ArrayList<>(args);
    int i = out.indexOf("--port");
    if (i >= 0 && i + 1 < out.size()) {
      out.set(i + 1, Integer.toString(port));
    } else {
      out.add("--port");
      out.add(Integer.toString(port));
    }
    if (!out.contains("--host")) {
      out.add("--host");
      out.add("127.0.0.1");
    }
    return out;
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  private void setPodStatus(Replica r, String phase, boolean ready, String reason, String message) {
    Pod current = client.resource(r.pod).get();
    if (current == null) {
      return;
    }
    Container container = current.getSpec().getContainers().get(0);
    var state =
        reason == null
            ? new io.fabric8.kubernetes.api.model.ContainerStateBuilder()
                .withNewRunning()
                .withStartedAt(now())
                .endRunning()
                .build()
            : new io.fabric8.kubernetes.api.model.ContainerStateBuilder()
                .withNewWaiting()
                .withReason(reason)
                .withMessage(message)
                .endWaiting()
                .build();
    current.setStatus(
        new PodStatusBuilder()
            .withPhase(phase)
            .withPodIP("127.0.0.1")
            .withStartTime(
                current.getStatus() != null && current.getStatus().getStartTime() != null
                    ? current.getStatus().getStartTime()
                    : now())
            .addNewCondition()
            .withType("Ready")
            .withStatus(ready ? "True" : "False")
            .withLastTransitionTime(now())
            .endCondition()
            .addNewContainerStatus()
            .withName(container.getName())
            .withImage(container.getImage())
            .withReady(ready)
            .withStarted(reason == null)
            .withRestartCount(r.restarts)
            .withState(state)
            .endContainerStatus()
            .build());
    try {
      r.pod = client.resource(current).updateStatus();
    } catch (KubernetesClientException e) {
      // the pod was deleted meanwhile
    }
  }

  /**
   * Writes the counts observed for {@code deployment} (the spec this tick reconciled) as its
   * status. observedGeneration is that spec's generation, not the stored one: when the operator
   * changed the Deployment since this tick listed it, the counts describe the older template, and
   * claiming the newer generation would let a reader take the old pods as the rolled-out ones.
   */
  void setDeploymentStatus(Deployment deployment, int total, int updated, int ready) {
    Deployment current =
        client
            .apps()
            .deployments()
            .inNamespace(deployment.getMetadata().getNamespace())
            .withName(deployment.getMetadata().getName())
            .get();
    if (current == null) {
      return;
    }
    DeploymentStatus status =
        current.getStatus() == null ? new DeploymentStatus() : current.getStatus();
    Long generation = deployment.getMetadata().getGeneration();
    if (Objects.equals(status.getReplicas(), total)
        && Objects.equals(status.getUpdatedReplicas(), updated)
        && Objects.equals(status.getReadyReplicas(), ready)
        && Objects.equals(status.getAvailableReplicas(), ready)
        && Objects.equals(status.getObservedGeneration(), generation)) {
      return; // nothing changed: write nothing, as a controller should
    }
    status.setReplicas(total);
    status.setUpdatedReplicas(updated);
    status.setReadyReplicas(ready);
    status.setAvailableReplicas(ready);
    status.setUnavailableReplicas(Math.max(0, total - ready));
    status.setObservedGeneration(generation);
    current.setStatus(status);
    try {
      client.resource(current).updateStatus();
    } catch (KubernetesClientException e) {
      System.err.println(
          "local serving runner: cannot update Deployment status: " + e.getMessage());
    }
  }

  private static String tail(Path file) {
    try {
      if (!Files.exists(file)) {
        return "";
      }
      List<String> lines = Files.readAllLines(file);
      List<String> errors = lines.stream().filter(l -> l.startsWith("error:")).toList();
      List<String> pick = errors.isEmpty() ? lines : errors;
      return String.join(" ", pick.subList(Math.max(0, pick.size() - 3), pick.size()));
    } catch (IOException e) {
      return "";
    }
  }

  private static String now() {
    return Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
  }

  @Override
  public void close() {
    closed = true;
    loop.shutdown();
    try {
      loop.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    replicas.values().forEach(LocalServingRunner::stop);
  }
}
