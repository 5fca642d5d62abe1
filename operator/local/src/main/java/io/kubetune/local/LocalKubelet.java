package io.kubetune.local;

import io.fabric8.kubernetes.api.model.BindingBuilder;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.ContainerState;
import io.fabric8.kubernetes.api.model.HTTPGetAction;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.kubetune.api.trainer.TrainerEvent;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Writer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import javax.net.ssl.SSLContext;

/**
 * The node of local mode on a real control plane: a scheduler and a kubelet for one Node, as far as
 * KubeTune's pods need them. It registers the Node (Ready, address 127.0.0.1, the kubelet port the
 * API server calls for pods/log), binds every pod that has no node to it, runs each pod's container
 * as a local process ({@link ContainerLauncher}: the KubeTune image only), writes pod status
 * (container state, pod IP, the Ready condition from the readiness probe, exit code and termination
 * message, phase), restarts containers of {@code restartPolicy: Always} pods with a growing delay,
 * and honours deletion (SIGTERM, the grace period, SIGKILL, terminal status, then the final
 * delete). Kubernetes' own Job and ReplicaSet/Deployment controllers do the rest.
 *
 * <p>Each pod gets its own loopback address ({@code 127.0.x.y}; Linux routes all of 127.0.0.0/8 to
 * the loopback interface) as its pod IP, and a serving container listens there on its own port, as
 * in a pod's network namespace: several serving pods use port 8000 at once, and the operator
 * reaches them at {@code http://<podIP>:8000} as on a cluster.
 */
public final class LocalKubelet implements AutoCloseable {
  public static final String DEFAULT_NODE_NAME = "kubetune-local";
  static final String HOST_IP = "127.0.0.1";
  private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(2);
  private static final long DEFAULT_GRACE_SECONDS = 30;

  private final KubernetesClient client;
  private final String nodeName;
  private final Predicate<String> namespaces;
  private final Path podsDir;
  private final ContainerLauncher launcher;
  private final TrainerOutputListener listener;
  private final SSLContext tls;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(PROBE_TIMEOUT).build();
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor();
  private final ExecutorService terminations = Executors.newCachedThreadPool();
  private final Map<String, PodRun> runs = new ConcurrentHashMap<>();
  private final Map<String, KubeletLogServer.ContainerLog> logs = new ConcurrentHashMap<>();
  private final PodAddresses addresses = new PodAddresses();
  private SharedIndexInformer<Pod> informer;
  private KubeletLogServer logServer;
  private volatile String fatalError;
  private final java.util.concurrent.atomic.AtomicBoolean closing =
      new java.util.concurrent.atomic.AtomicBoolean();
  private volatile boolean closed;

  /** What the agent knows of one pod it runs. */
  private static final class PodRun {
    final String namespace;
    final String name;
    final Path dir;
    volatile Process process;
    String podIp;
    String startedAt;
    int restarts;
    Instant restartAt;
    boolean ready;
    Instant nextProbe = Instant.EPOCH;
    boolean terminal;
    volatile boolean terminating;
    PodStatus written;
    Writer log;

    PodRun(String namespace, String name, Path dir) {
      this.namespace = namespace;
      this.name = name;
      this.dir = dir;
    }
  }

  /**
   * @param client a client allowed to bind pods, write pod and node status and delete pods (the
   *     local control plane's administrator)
   * @param tls the kubelet port's key and trust (see ControlPlane.kubeletServerTls)
   * @param namespaces the namespaces whose pods this node takes (all, for local mode)
   */
  public LocalKubelet(
      KubernetesClient client,
      SSLContext tls,
      String nodeName,
      Predicate<String> namespaces,
      Path stateDir,
      Map<String, Path> claimFolders,
      Path trainerLauncher,
      TrainerOutputListener listener) {
    this.client = client;
    this.tls = tls;
    this.nodeName = nodeName;
    this.namespaces = namespaces;
    this.podsDir = stateDir.resolve("pods");
    this.launcher = new ContainerLauncher(client, stateDir, claimFolders, trainerLauncher);
    this.listener = listener;
  }

  /** Registers the Node, starts the log endpoint and begins taking pods. */
  public void start() throws IOException {
    logServer = new KubeletLogServer(tls, key -> Optional.ofNullable(logs.get(key)));
    KubeletNode.register(client, nodeName, HOST_IP, logServer.port());
    informer = client.pods().inAnyNamespace().inform();
    removeOrphanedPodDirs();
    loop.scheduleWithFixedDelay(this::tickSafely, 0, 250, TimeUnit.MILLISECONDS);
  }

  /** A problem local mode cannot get past (an image it cannot run, a missing Secret), or null. */
  public String fatalError() {
    return fatalError;
  }

  public String nodeName() {
    return nodeName;
  }

  /**
   * Where a Service's traffic would go: {@code http://<podIP>:<targetPort>} of a ready pod it
   * selects on this node (kube-proxy's job on a cluster).
   */
  public Optional<String> endpointOf(String namespace, String serviceName) {
    Service service = client.services().inNamespace(namespace).withName(serviceName).get();
    if (service == null || service.getSpec().getSelector() == null) {
      return Optional.empty();
    }
    Map<String, String> selector = service.getSpec().getSelector();
    var port = service.getSpec().getPorts().get(0).getTargetPort();
    for (Pod pod : informer.getStore().list()) {
      PodRun run = runs.get(pod.getMetadata().getUid());
      if (run != null
          && run.ready
          && namespace.equals(pod.getMetadata().getNamespace())
          && pod.getMetadata().getLabels() != null
          && pod.getMetadata().getLabels().entrySet().containsAll(selector.entrySet())) {
        Integer number =
            port.getIntVal() != null
                ? port.getIntVal()
                : containerPort(pod.getSpec().getContainers().get(0), port.getStrVal());
        if (number != null) {
          return Optional.of("http://" + run.podIp + ":" + number);
        }
      }
    }
    return Optional.empty();
  }

  private void tickSafely() {
    try {
      tick();
    } catch (RuntimeException e) {
      if (!closed) {
        System.err.println("local kubelet: " + e);
      }
    }
  }

  private void tick() {
    Set<String> seen = new HashSet<>();
    for (Pod pod : informer.getStore().list()) {
      if (!namespaces.test(pod.getMetadata().getNamespace())) {
        continue;
      }
      seen.add(pod.getMetadata().getUid());
      String boundTo = pod.getSpec().getNodeName();
      if (boundTo == null) {
        if (pod.getMetadata().getDeletionTimestamp() == null) {
          bind(pod);
        }
        continue;
      }
      if (nodeName.equals(boundTo)) {
        try {
          sync(pod);
        } catch (KubernetesClientException e) {
          // a conflict or a pod deleted meanwhile: the next tick sees the new state
          if (e.getCode() != 404 && e.getCode() != 409) {
            System.err.println(
                "local kubelet: pod " + pod.getMetadata().getName() + ": " + e.getMessage());
          }
        }
      }
    }
    // Pods gone from the API: stop what still runs (deleted with grace 0 by someone else), and
    // remove the pod's folder (its emptyDir volumes, its log), as the kubelet does.
    for (var entry : List.copyOf(runs.entrySet())) {
      if (!seen.contains(entry.getKey())) {
        PodRun run = entry.getValue();
        runs.remove(entry.getKey());
        Process process = run.terminating ? null : run.process;
        terminations.submit(
            () -> {
              if (process != null) {
                ContainerLauncher.terminate(process, 0);
              }
              removePodDir(run);
            });
        releaseAddress(run);
      }
    }
  }

  private void removePodDir(PodRun run) {
    logs.keySet().removeIf(key -> key.startsWith(run.namespace + "/" + run.name + "/"));
    if (run.dir == null) {
      return;
    }
    try {
      KubeTuneLocal.deleteRecursively(run.dir);
    } catch (IOException | RuntimeException e) {
      System.err.println("local kubelet: cannot remove " + run.dir + ": " + e.getMessage());
    }
  }

  /**
   * Folders of pods that no longer exist (deleted while no agent ran), as the kubelet's orphaned
   * pod cleanup: each holds the pod's emptyDir volumes, e.g. the trainer's extracted native
   * libraries (about 450 MB).
   */
  private void removeOrphanedPodDirs() throws IOException {
    if (!Files.isDirectory(podsDir)) {
      return;
    }
    Set<String> live = new HashSet<>();
    for (Pod pod : informer.getStore().list()) {
      live.add(podDir(pod).toString());
    }
    try (var namespaceDirs = Files.list(podsDir)) {
      for (Path namespaceDir : namespaceDirs.toList()) {
        if (!namespaces.test(namespaceDir.getFileName().toString())) {
          continue;
        }
        try (var podDirs = Files.list(namespaceDir)) {
          for (Path dir : podDirs.toList()) {
            if (!live.contains(dir.toString())) {
              KubeTuneLocal.deleteRecursively(dir);
            }
          }
        }
      }
    }
  }

  /** The scheduler's part: every pod without a node goes to this one. */
  private void bind(Pod pod) {
    try {
      client
          .bindings()
          .inNamespace(pod.getMetadata().getNamespace())
          .resource(
              new BindingBuilder()
                  .withNewMetadata()
                  .withName(pod.getMetadata().getName())
                  .withUid(pod.getMetadata().getUid())
                  .endMetadata()
                  .withNewTarget()
                  .withApiVersion("v1")
                  .withKind("Node")
                  .withName(nodeName)
                  .endTarget()
                  .build())
          .create();
    } catch (KubernetesClientException e) {
      // already bound (the informer lags) or gone
      if (e.getCode() != 409 && e.getCode() != 404) {
        throw e;
      }
    }
  }

  private void sync(Pod pod) {
    String uid = pod.getMetadata().getUid();
    PodRun run = runs.get(uid);
    if (pod.getMetadata().getDeletionTimestamp() != null) {
      if (run == null) {
        run = new PodRun(pod.getMetadata().getNamespace(), pod.getMetadata().getName(), null);
        run.terminal = isTerminal(pod);
        runs.put(uid, run);
      }
      if (!run.terminating) {
        run.terminating = true;
        PodRun terminating = run;
        terminations.submit(() -> terminate(pod, terminating));
      }
      return;
    }
    if (run == null) {
      run = new PodRun(pod.getMetadata().getNamespace(), pod.getMetadata().getName(), podDir(pod));
      runs.put(uid, run);
      if (isTerminal(pod)) {
        run.terminal = true;
        return;
      }
      if (pod.getStatus() != null
          && pod.getStatus().getContainerStatuses() != null
          && !pod.getStatus().getContainerStatuses().isEmpty()
          && "Never".equals(pod.getSpec().getRestartPolicy())) {
        // Started by an earlier run of this agent, whose process is gone with it.
        run.podIp = pod.getStatus().getPodIP();
        run.terminal = true;
        write(
            pod,
            run,
            KubeletPodStatus.terminated(
                137,
                "The container could not be located when the pod was terminated",
                null,
                now(),
                null),
            false,
            "ContainerStatusUnknown");
        return;
      }
      startContainer(pod, run);
      return;
    }
    if (run.terminal || run.terminating) {
      return;
    }
    Process process = run.process;
    if (process == null) {
      if (run.restartAt != null && Instant.now().isAfter(run.restartAt)) {
        run.restartAt = null;
        startContainer(pod, run);
      }
      return;
    }
    if (!process.isAlive()) {
      containerExited(pod, run, process);
      return;
    }
    probeReadiness(pod, run);
  }

  private static boolean isTerminal(Pod pod) {
    String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
    return "Succeeded".equals(phase) || "Failed".equals(phase);
  }

  private Path podDir(Pod pod) {
    return podsDir
        .resolve(pod.getMetadata().getNamespace())
        .resolve(pod.getMetadata().getName() + "-" + pod.getMetadata().getUid().substring(0, 8));
  }

  /** Why this node cannot run the pod, or null when it can. */
  static String unsupported(Pod pod) {
    var spec = pod.getSpec();
    if (spec.getInitContainers() != null && !spec.getInitContainers().isEmpty()) {
      return "the local kubelet runs no init containers; pod has "
          + spec.getInitContainers().size();
    }
    if (spec.getContainers().size() != 1) {
      return "the local kubelet runs pods with exactly one container; pod has "
          + spec.getContainers().size();
    }
    return ContainerLauncher.unsupportedImage(spec.getContainers().get(0));
  }

  private void startContainer(Pod pod, PodRun run) {
    String refused = unsupported(pod);
    if (refused != null) {
      fatalError = "pod " + run.namespace + "/" + run.name + ": " + refused;
      write(pod, run, KubeletPodStatus.waiting("LocalModeUnsupportedImage", refused), false, null);
      return;
    }
    Container container = pod.getSpec().getContainers().get(0);
    try {
      if (run.podIp == null) {
        run.podIp = addresses.allocate(container);
      }
      ContainerLauncher.Launched launched =
          launcher.launch(
              run.namespace,
              pod.getSpec(),
              run.dir,
              container.getName(),
              ContainerLauncher.Output.PIPE_BOTH,
              args -> PodAddresses.withHost(args, run.podIp));
      Process process = launched.process();
      Path logFile = run.dir.resolve(container.getName() + ".log");
      run.log = Files.newBufferedWriter(logFile, StandardCharsets.UTF_8);
      // The log grows until both streams are drained, which may be after the process exited.
      java.util.concurrent.CountDownLatch open = new java.util.concurrent.CountDownLatch(2);
      pump(process.getInputStream(), run, true, open);
      pump(process.getErrorStream(), run, false, open);
      logs.put(
          run.namespace + "/" + run.name + "/" + container.getName(),
          new KubeletLogServer.ContainerLog(
              logFile, launched.paths()::reverse, () -> open.getCount() > 0));
      run.process = process;
      run.startedAt = now();
      run.ready = false;
      run.nextProbe = Instant.EPOCH;
      write(pod, run, KubeletPodStatus.running(run.startedAt), readyWithoutProbe(container), null);
      run.ready = readyWithoutProbe(container);
    } catch (ContainerLauncher.MissingSecretException e) {
      fatalError = e.getMessage();
      write(
          pod,
          run,
          KubeletPodStatus.waiting("CreateContainerConfigError", e.getMessage()),
          false,
          null);
    } catch (IOException e) {
      fatalError = "pod " + run.namespace + "/" + run.name + ": " + e.getMessage();
      write(pod, run, KubeletPodStatus.waiting("RunContainerError", e.toString()), false, null);
    }
  }

  private static boolean readyWithoutProbe(Container container) {
    return container.getReadinessProbe() == null;
  }

  /** stdout and stderr into the container's one log; trainer events on stdout to the listener. */
  private void pump(
      InputStream stream, PodRun run, boolean stdout, java.util.concurrent.CountDownLatch open) {
    Writer log = run.log;
    Thread pump =
        new Thread(
            () -> {
              try (BufferedReader reader =
                  new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                  synchronized (log) {
                    log.write(line);
                    log.write('\n');
                    log.flush();
                  }
                  if (stdout) {
                    String podName = run.name;
                    TrainerEvent.parse(line).ifPresent(e -> listener.onEvent(podName, e));
                  }
                }
              } catch (IOException e) {
                // the process is gone
              } finally {
                open.countDown();
              }
            },
            "kubelet-" + (stdout ? "stdout-" : "stderr-") + run.name);
    pump.setDaemon(true);
    pump.start();
  }

  private void containerExited(Pod pod, PodRun run, Process process) {
    int exitCode = process.exitValue();
    Container container = pod.getSpec().getContainers().get(0);
    run.process = null;
    run.ready = false;
    String message = terminationMessage(run, container, exitCode);
    String policy = Objects.requireNonNullElse(pod.getSpec().getRestartPolicy(), "Always");
    boolean restart = "Always".equals(policy) || ("OnFailure".equals(policy) && exitCode != 0);
    if (!restart) {
      run.terminal = true;
      write(
          pod,
          run,
          KubeletPodStatus.terminated(
              exitCode, message, run.startedAt, now(), "local://" + process.pid()),
          false,
          null);
      return;
    }
    run.restarts++;
    long delay = Math.min(300, 10L << Math.min(5, run.restarts - 1));
    run.restartAt = Instant.now().plusSeconds(delay);
    write(
        pod,
        run,
        KubeletPodStatus.waiting(
            "CrashLoopBackOff",
            "back-off "
                + delay
                + "s restarting failed container="
                + container.getName()
                + " pod="
                + run.name
                + ": exit code "
                + exitCode
                + (message == null ? "" : ": " + message.strip())),
        false,
        null);
  }

  private static String terminationMessage(PodRun run, Container container, int exitCode) {
    Path fallback =
        "FallbackToLogsOnError".equals(container.getTerminationMessagePolicy())
            ? run.dir.resolve(container.getName() + ".log")
            : null;
    return ContainerLauncher.terminationMessage(run.dir, fallback, exitCode);
  }

  private void probeReadiness(Pod pod, PodRun run) {
    Container container = pod.getSpec().getContainers().get(0);
    if (container.getReadinessProbe() == null
        || container.getReadinessProbe().getHttpGet() == null
        || Instant.now().isBefore(run.nextProbe)) {
      return;
    }
    // Every second until ready, then at the probe's period.
    long period = Objects.requireNonNullElse(container.getReadinessProbe().getPeriodSeconds(), 10);
    boolean ready = probe(container, container.getReadinessProbe().getHttpGet(), run.podIp);
    run.nextProbe = Instant.now().plusSeconds(ready ? period : 1);
    if (ready != run.ready) {
      run.ready = ready;
      write(pod, run, KubeletPodStatus.running(run.startedAt), ready, null);
    }
  }

  private boolean probe(Container container, HTTPGetAction get, String ip) {
    Integer port =
        get.getPort().getIntVal() != null
            ? get.getPort().getIntVal()
            : containerPort(container, get.getPort().getStrVal());
    if (port == null) {
      return false;
    }
    try {
      HttpResponse<Void> response =
          http.send(
              HttpRequest.newBuilder(
                      URI.create(
                          "http://"
                              + ip
                              + ":"
                              + port
                              + Objects.requireNonNullElse(get.getPath(), "/")))
                  .timeout(PROBE_TIMEOUT)
                  .build(),
              HttpResponse.BodyHandlers.discarding());
      return response.statusCode() >= 200 && response.statusCode() < 400;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private static Integer containerPort(Container container, String name) {
    return Objects.requireNonNullElse(container.getPorts(), List.<ContainerPort>of()).stream()
        .filter(p -> name.equals(p.getName()))
        .map(ContainerPort::getContainerPort)
        .findFirst()
        .orElse(null);
  }

  /**
   * Deletion as the kubelet does it: SIGTERM, the grace period, SIGKILL; the terminal status; then
   * the final delete with grace 0 (finalizers such as the Job controller's still hold the pod).
   */
  private void terminate(Pod pod, PodRun run) {
    try {
      Process process = run.process;
      if (process != null) {
        long grace =
            Objects.requireNonNullElse(
                pod.getMetadata().getDeletionGracePeriodSeconds(),
                Objects.requireNonNullElse(
                    pod.getSpec().getTerminationGracePeriodSeconds(), DEFAULT_GRACE_SECONDS));
        int exitCode = ContainerLauncher.terminate(process, grace);
        Container container = pod.getSpec().getContainers().get(0);
        Pod current = client.pods().inNamespace(run.namespace).withName(run.name).get();
        if (current != null) {
          write(
              current,
              run,
              KubeletPodStatus.terminated(
                  exitCode < 0 ? 137 : exitCode,
                  terminationMessage(run, container, exitCode),
                  run.startedAt,
                  now(),
                  "local://" + process.pid()),
              false,
              null);
        }
        run.process = null;
      } else if (!run.terminal && run.dir != null && pod.getStatus() != null) {
        // Never started (refused, or waiting to restart): nothing to stop.
        run.terminal = true;
      }
      client.pods().inNamespace(run.namespace).withName(run.name).withGracePeriod(0).delete();
    } catch (RuntimeException e) {
      if (!closed) {
        System.err.println("local kubelet: deleting pod " + run.name + ": " + e);
      }
      run.terminating = false; // the next tick tries again
    } finally {
      releaseAddress(run);
    }
  }

  /** Writes the pod's status when it differs from what this agent wrote last. */
  private void write(Pod pod, PodRun run, ContainerState state, boolean ready, String reason) {
    PodStatus status =
        KubeletPodStatus.of(
            pod,
            new KubeletPodStatus.Observed(
                state,
                ready,
                run.restarts,
                run.podIp == null ? HOST_IP : run.podIp,
                HOST_IP,
                now()));
    if (reason != null) {
      status.setReason(reason);
    }
    if (status.equals(run.written)) {
      return;
    }
    Pod patch =
        new PodBuilder()
            .withNewMetadata()
            .withName(run.name)
            .withNamespace(run.namespace)
            .endMetadata()
            .withStatus(status)
            .build();
    client.pods().inNamespace(run.namespace).resource(patch).patchStatus();
    run.written = status;
  }

  private void releaseAddress(PodRun run) {
    if (run.podIp != null) {
      addresses.release(run.podIp);
    }
  }

  private static String now() {
    return Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
  }

  /**
   * A container stopped because this node goes down: terminal status as the kubelet's graceful node
   * shutdown writes it (phase by exit code, reason Terminated), so the Job and ReplicaSet
   * controllers replace the pod (the replacement waits, unbound, for the next agent).
   */
  private void shutDown(PodRun run, Process process) {
    int exitCode = ContainerLauncher.terminate(process, 10);
    try {
      Pod pod = client.pods().inNamespace(run.namespace).withName(run.name).get();
      if (pod == null) {
        return;
      }
      Container container = pod.getSpec().getContainers().get(0);
      run.ready = false;
      PodStatus status =
          KubeletPodStatus.of(
              pod,
              new KubeletPodStatus.Observed(
                  KubeletPodStatus.terminated(
                      exitCode < 0 ? 137 : exitCode,
                      terminationMessage(run, container, exitCode),
                      run.startedAt,
                      now(),
                      "local://" + process.pid()),
                  false,
                  run.restarts,
                  run.podIp,
                  HOST_IP,
                  now()));
      status.setReason("Terminated");
      status.setMessage("Pod was terminated because the local kubelet (" + nodeName + ") stopped.");
      client
          .pods()
          .inNamespace(run.namespace)
          .resource(
              new PodBuilder()
                  .withNewMetadata()
                  .withName(run.name)
                  .withNamespace(run.namespace)
                  .endMetadata()
                  .withStatus(status)
                  .build())
          .patchStatus();
    } catch (KubernetesClientException e) {
      // the pod or the control plane is gone
    }
  }

  /**
   * Stops every container (SIGTERM, then SIGKILL after 10 s) with a terminal pod status, and marks
   * the Node not ready, as a node going down.
   */
  @Override
  public void close() {
    if (!closing.compareAndSet(false, true)) {
      return; // closed already (by the owner, or by the shutdown hook at Ctrl-C)
    }
    closed = true;
    loop.shutdown();
    try {
      loop.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    List<Thread> stops = new ArrayList<>();
    for (PodRun run : runs.values()) {
      Process process = run.process;
      if (process != null && !run.terminating) {
        Thread stop = new Thread(() -> shutDown(run, process));
        stop.start();
        stops.add(stop);
      }
    }
    for (Thread stop : stops) {
      try {
        stop.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    terminations.shutdownNow();
    if (informer != null) {
      informer.close();
    }
    if (logServer != null) {
      logServer.close();
    }
    KubeletNode.markNotReady(client, nodeName);
  }
}
