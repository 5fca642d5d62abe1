package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobCondition;
import io.fabric8.kubernetes.api.model.batch.v1.JobConditionBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.JobStatus;
import io.fabric8.kubernetes.api.model.batch.v1.PodFailurePolicyRule;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.operator.Labels;
import io.kubetune.operator.model.TrainingJobPlan;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * A development aid that plays the Job controller and the kubelet for local mode: for each training
 * Job the operator creates it creates a Pod, runs the trainer container as a local process (same
 * arguments, environment and volumes, with mount paths translated to local folders), writes the
 * pod's status back (running, exit code, termination message) and completes or fails the Job by its
 * backoffLimit and podFailurePolicy. It runs only the KubeTune trainer image, through the local
 * launcher {@code trainer-image/bin/trainer}; any other image is refused.
 */
final class LocalPodRunner implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final KubernetesClient client;
  private final Path stateDir;
  private final ContainerLauncher launcher;
  private final TrainerOutputListener listener;
  private final PodLogPublisher logs;
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor();
  private final Map<String, RunState> runs = new ConcurrentHashMap<>();
  private volatile String fatalError;
  private volatile boolean closed;

  /** What the runner knows about one Job. */
  private static final class RunState {
    Process process;
    Pod pod;
    Path podDir;
    int failed;
    int started;
  }

  LocalPodRunner(
      KubernetesClient client,
      Path stateDir,
      Map<String, Path> claimFolders,
      Path trainerLauncher,
      TrainerOutputListener listener,
      PodLogPublisher logs) {
    this.client = client;
    this.stateDir = stateDir;
    this.launcher = new ContainerLauncher(client, stateDir, claimFolders, trainerLauncher);
    this.listener = listener;
    this.logs = logs;
  }

  /** Makes a pod's log readable through the API (pods/log), as the kubelet does. */
  interface PodLogPublisher {
    void publish(String namespace, String pod, Path logFile, UnaryOperator<String> rewrite);
  }

  void start() {
    loop.scheduleWithFixedDelay(this::tickSafely, 0, 300, TimeUnit.MILLISECONDS);
  }

  /** A problem the runner cannot get past (e.g. an image it cannot run), or null. */
  String fatalError() {
    return fatalError;
  }

  /** The running trainer process of a Job, for tests that play a node failure. */
  Process processOf(String jobName) {
    return runs.values().stream()
        .filter(
            r -> r.pod != null && jobName.equals(r.pod.getMetadata().getLabels().get("job-name")))
        .map(r -> r.process)
        .filter(Objects::nonNull)
        .findFirst()
        .orElse(null);
  }

  private void tickSafely() {
    try {
      tick();
    } catch (RuntimeException e) {
      if (!closed) {
        System.err.println("local pod runner: " + e.getMessage());
      }
    }
  }

  private void tick() {
    List<Job> jobs =
        client
            .batch()
            .v1()
            .jobs()
            .inAnyNamespace()
            .withLabel(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
            .list()
            .getItems();
    Set<String> live = new HashSet<>();
    for (Job job : jobs) {
      live.add(job.getMetadata().getUid());
    }
    // Jobs deleted (a new training revision, or the FineTuneJob is gone): stop their trainer and
    // remove their pods, as the garbage collector would. First, because a Job replaced under the
    // same name starts its pods' numbering again and must not find the old pod's name taken.
    for (var entry : new ArrayList<>(runs.entrySet())) {
      if (!live.contains(entry.getKey())) {
        RunState run = entry.getValue();
        stop(run, 10);
        if (run.pod != null) {
          client.resource(run.pod).delete();
        }
        runs.remove(entry.getKey());
      }
    }
    for (Job job : jobs) {
      RunState run = runs.computeIfAbsent(job.getMetadata().getUid(), uid -> new RunState());
      reconcile(job, run);
    }
  }

  private void reconcile(Job job, RunState run) {
    if (TrainingJobPlan.jobFinished(job) || job.getMetadata().getDeletionTimestamp() != null) {
      if (job.getMetadata().getDeletionTimestamp() != null) {
        stop(run, 10);
      }
      return;
    }
    if (Boolean.TRUE.equals(job.getSpec().getSuspend())) {
      if (run.process != null) {
        // The Job controller deletes pods of a suspended Job: SIGTERM, grace period, gone.
        stop(run, graceSeconds(job));
        client.resource(run.pod).delete();
        run.pod = null;
        setJobStatus(job, 0, 0, run.failed, List.of());
      }
      return;
    }
    if (run.process == null) {
      startPod(job, run);
      return;
    }
    if (!run.process.isAlive()) {
      handleExit(job, run);
    }
  }

  private void startPod(Job job, RunState run) {
    Container container = job.getSpec().getTemplate().getSpec().getContainers().get(0);
    String podName = job.getMetadata().getName() + "-" + (++run.started);
    Pod pod =
        ContainerLauncher.ownedPod(
            podName,
            job,
            job.getSpec().getTemplate(),
            Map.of(
                "job-name", job.getMetadata().getName(),
                "controller-uid", job.getMetadata().getUid()),
            now());
    run.pod = client.resource(pod).create();
    run.podDir = stateDir.resolve("pods").resolve(podName);

    String unsupported = ContainerLauncher.unsupportedImage(container);
    if (unsupported != null) {
      setWaiting(run, "LocalModeUnsupportedImage", unsupported);
      fatalError = unsupported;
      return;
    }
    try {
      ContainerLauncher.Launched launched =
          launcher.launch(
              job.getMetadata().getNamespace(),
              job.getSpec().getTemplate().getSpec(),
              run.podDir,
              "trainer",
              ContainerLauncher.Output.PIPE_STDOUT,
              args -> args);
      run.process = launched.process();
      pumpStdout(run, podName);
      // The log as the pod would print it: local folders back to the container's mount paths.
      logs.publish(
          job.getMetadata().getNamespace(),
          podName,
          run.podDir.resolve("trainer.stdout.log"),
          launched.paths()::reverse);
      setRunning(run);
      setJobStatus(job, 1, 0, run.failed, List.of());
    } catch (ContainerLauncher.MissingSecretException e) {
      setWaiting(run, "CreateContainerConfigError", e.getMessage());
      fatalError = e.getMessage();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void pumpStdout(RunState run, String podName) throws IOException {
    Process process = run.process;
    Writer log = Files.newBufferedWriter(run.podDir.resolve("trainer.stdout.log"));
    Thread pump =
        new Thread(
            () -> {
              try (BufferedReader reader =
                      new BufferedReader(
                          new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                  log) {
                String line;
                while ((line = reader.readLine()) != null) {
                  log.write(line);
                  log.write('\n');
                  log.flush();
                  // plain output lines are no events
                  TrainerEvent.parse(line).ifPresent(event -> listener.onEvent(podName, event));
                }
              } catch (IOException e) {
                // process gone
              }
            },
            "trainer-stdout-" + podName);
    pump.setDaemon(true);
    pump.start();
  }

  private void handleExit(Job job, RunState run) {
    int exitCode = run.process.exitValue();
    String message = terminationMessage(run, exitCode);
    setTerminated(run, exitCode, message);
    run.process = null;
    List<PodFailurePolicyRule> rules =
        job.getSpec().getPodFailurePolicy() == null
            ? List.of()
            : job.getSpec().getPodFailurePolicy().getRules();
    if (exitCode == 0) {
      setJobStatus(
          job, 0, 1, run.failed, List.of(condition("Complete", "Completed", "Job completed")));
      return;
    }
    for (int i = 0; i < rules.size(); i++) {
      PodFailurePolicyRule rule = rules.get(i);
      var onExit = rule.getOnExitCodes();
      if (onExit != null
          && "In".equals(onExit.getOperator())
          && onExit.getValues().contains(exitCode)) {
        if ("FailJob".equals(rule.getAction())) {
          run.failed++;
          setJobStatus(
              job,
              0,
              0,
              run.failed,
              List.of(
                  condition(
                      "Failed",
                      "PodFailurePolicy",
                      "Container trainer for pod "
                          + job.getMetadata().getNamespace()
                          + "/"
                          + run.pod.getMetadata().getName()
                          + " failed with exit code "
                          + exitCode
                          + " matching FailJob rule at index "
                          + i)));
          return;
        }
        if ("Ignore".equals(rule.getAction())) {
          return; // not counted: a new pod starts on the next tick
        }
      }
    }
    run.failed++;
    int backoffLimit = Objects.requireNonNullElse(job.getSpec().getBackoffLimit(), 6);
    if (run.failed > backoffLimit) {
      setJobStatus(
          job,
          0,
          0,
          run.failed,
          List.of(
              condition(
                  "Failed",
                  "BackoffLimitExceeded",
                  "Job has reached the specified backoff limit")));
    } else {
      setJobStatus(job, 0, 0, run.failed, List.of());
    }
  }

  /** The termination-log file, else (FallbackToLogsOnError) the tail of the trainer's stderr. */
  private static String terminationMessage(RunState run, int exitCode) {
    return ContainerLauncher.terminationMessage(
        run.podDir, run.podDir.resolve("trainer.stderr.log"), exitCode);
  }

  private void stop(RunState run, long graceSeconds) {
    Process process = run.process;
    if (process == null) {
      return;
    }
    ContainerLauncher.terminate(process, graceSeconds); // the trainer checkpoints and exits
    run.process = null;
  }

  private static long graceSeconds(Job job) {
    Long grace = job.getSpec().getTemplate().getSpec().getTerminationGracePeriodSeconds();
    return grace == null ? 30 : grace;
  }

  private void setRunning(RunState run) {
    updatePodStatus(
        run,
        "Running",
        containerStatus(run, true)
            .withStarted(true)
            .withNewState()
            .withNewRunning()
            .withStartedAt(now())
            .endRunning()
            .endState()
            .build());
  }

  private void setWaiting(RunState run, String reason, String message) {
    updatePodStatus(
        run,
        "Pending",
        containerStatus(run, false)
            .withNewState()
            .withNewWaiting()
            .withReason(reason)
            .withMessage(message)
            .endWaiting()
            .endState()
            .build());
  }

  private void setTerminated(RunState run, int exitCode, String message) {
    updatePodStatus(
        run,
        exitCode == 0 ? "Succeeded" : "Failed",
        containerStatus(run, false)
            .withNewState()
            .withNewTerminated()
            .withExitCode(exitCode)
            .withReason(exitCode == 0 ? "Completed" : exitCode == 137 ? "OOMKilled" : "Error")
            .withMessage(message)
            .withFinishedAt(now())
            .endTerminated()
            .endState()
            .build());
  }

  private static ContainerStatusBuilder containerStatus(RunState run, boolean ready) {
    Container container = run.pod.getSpec().getContainers().get(0);
    return new ContainerStatusBuilder()
        .withName(container.getName())
        .withImage(container.getImage())
        .withReady(ready)
        .withRestartCount(0);
  }

  private void updatePodStatus(RunState run, String phase, ContainerStatus container) {
    Pod current = client.resource(run.pod).get();
    if (current == null) {
      return;
    }
    current.setStatus(
        new PodStatusBuilder()
            .withPhase(phase)
            .withStartTime(
                current.getStatus() != null && current.getStatus().getStartTime() != null
                    ? current.getStatus().getStartTime()
                    : now())
            .withContainerStatuses(container)
            .build());
    run.pod = client.resource(current).updateStatus();
  }

  private void setJobStatus(
      Job job, int active, int succeeded, int failed, List<JobCondition> conditions) {
    Job current =
        client
            .batch()
            .v1()
            .jobs()
            .inNamespace(job.getMetadata().getNamespace())
            .withName(job.getMetadata().getName())
            .get();
    if (current == null) {
      return;
    }
    JobStatus status = current.getStatus() == null ? new JobStatus() : current.getStatus();
    status.setActive(active);
    status.setSucceeded(succeeded);
    status.setFailed(failed);
    if (status.getStartTime() == null) {
      status.setStartTime(now());
    }
    if (!conditions.isEmpty()) {
      status.setCompletionTime(now());
      status.setConditions(conditions);
    }
    current.setStatus(status);
    try {
      client.resource(current).updateStatus();
    } catch (KubernetesClientException e) {
      System.err.println("local pod runner: cannot update Job status: " + e.getMessage());
    }
  }

  private static JobCondition condition(String type, String reason, String message) {
    return new JobConditionBuilder()
        .withType(type)
        .withStatus("True")
        .withReason(reason)
        .withMessage(message)
        .withLastTransitionTime(now())
        .build();
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
    for (RunState run : runs.values()) {
      stop(run, 10);
    }
  }

  static JsonNode parse(String line) throws IOException {
    return JSON.readTree(line);
  }
}
