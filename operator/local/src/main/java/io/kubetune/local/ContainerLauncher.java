package io.kubetune.local;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.trainer.TrainerEnvironment;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * Starts a pod's first container as a local process, as a kubelet would start it in a container:
 * the same arguments and environment (secretKeyRefs resolved from the API), and its volumes as
 * local folders with every mount path rewritten in arguments, environment and projected ConfigMap
 * files. Only the KubeTune trainer image can run, through the launcher {@code
 * trainer-image/bin/trainer}. Shared by the Job and the Deployment halves of local mode on the mock
 * and by the node agent on the real control plane ({@link LocalKubelet}).
 */
final class ContainerLauncher {
  static final String TRAINER_IMAGE_MARKER = "kubetune-trainer";

  private final KubernetesClient client;
  private final Path stateDir;
  private final Map<String, Path> claimFolders;
  private final Path trainerLauncher;

  ContainerLauncher(
      KubernetesClient client,
      Path stateDir,
      Map<String, Path> claimFolders,
      Path trainerLauncher) {
    this.client = client;
    this.stateDir = stateDir;
    this.claimFolders = claimFolders;
    this.trainerLauncher = trainerLauncher;
  }

  /**
   * The Pod a controller creates from its template: the template's labels and annotations plus
   * {@code extraLabels}, the spec as is, and a controller owner reference to {@code owner}.
   */
  static Pod ownedPod(
      String name,
      HasMetadata owner,
      PodTemplateSpec template,
      Map<String, String> extraLabels,
      String creationTimestamp) {
    return new PodBuilder()
        .withNewMetadata()
        .withName(name)
        .withNamespace(owner.getMetadata().getNamespace())
        .withLabels(template.getMetadata().getLabels())
        .addToLabels(extraLabels)
        .withAnnotations(template.getMetadata().getAnnotations())
        .withCreationTimestamp(creationTimestamp)
        .addNewOwnerReference()
        .withApiVersion(owner.getApiVersion())
        .withKind(owner.getKind())
        .withName(owner.getMetadata().getName())
        .withUid(owner.getMetadata().getUid())
        .withController(true)
        .withBlockOwnerDeletion(true)
        .endOwnerReference()
        .endMetadata()
        .withSpec(template.getSpec())
        .build();
  }

  /** Why local mode cannot run this container's image, or null when it can. */
  static String unsupportedImage(Container container) {
    if (container.getImage() != null && container.getImage().contains(TRAINER_IMAGE_MARKER)) {
      return null;
    }
    return "local mode runs only the KubeTune trainer image (an image name containing '"
        + TRAINER_IMAGE_MARKER
        + "'), not '"
        + container.getImage()
        + "'; remove spec.trainerImage to use the default";
  }

  /** A started container: its process and the mount-path translation it runs with. */
  record Launched(Process process, PathTranslation paths) {}

  /** Where a container's output goes: files in its folder, or pipes the caller reads. */
  enum Output {
    /** stdout to {@code <name>.stdout.log}, stderr to {@code <name>.stderr.log}. */
    FILES,
    /** stdout piped to the caller, stderr to {@code <name>.stderr.log}. */
    PIPE_STDOUT,
    /** stdout and stderr piped to the caller (a kubelet's one log per container). */
    PIPE_BOTH
  }

  /**
   * Starts the container in {@code podDir}, its output as {@code output} says; {@code rewriteArgs}
   * adapts the translated arguments (e.g. a port) before the start.
   *
   * @throws MissingSecretException when a secretKeyRef cannot be resolved
   */
  Launched launch(
      String namespace,
      PodSpec podSpec,
      Path podDir,
      String logName,
      Output output,
      UnaryOperator<List<String>> rewriteArgs)
      throws IOException {
    Container container = podSpec.getContainers().get(0);
    Files.createDirectories(podDir);
    PathTranslation paths = mountVolumes(namespace, podSpec, podDir);
    List<String> args = new ArrayList<>();
    for (String arg : Objects.requireNonNullElse(container.getArgs(), List.<String>of())) {
      args.add(paths.apply(arg));
    }
    List<String> command = new ArrayList<>();
    command.add(trainerLauncher.toString());
    command.addAll(rewriteArgs.apply(args));
    ProcessBuilder builder = new ProcessBuilder(command).directory(podDir.toFile());
    Map<String, String> env = builder.environment();
    for (EnvVar var : Objects.requireNonNullElse(container.getEnv(), List.<EnvVar>of())) {
      String value = resolveEnv(namespace, container, var);
      if (value != null) {
        env.put(var.getName(), paths.apply(value));
      }
    }
    Path terminationLog = podDir.resolve("termination-log");
    Files.deleteIfExists(terminationLog);
    env.put(TrainerEnvironment.TERMINATION_LOG, terminationLog.toString());
    env.put("TMPDIR", paths.apply(env.getOrDefault("TMPDIR", "/tmp")));
    if (output != Output.PIPE_BOTH) {
      builder.redirectError(podDir.resolve(logName + ".stderr.log").toFile());
    }
    if (output == Output.FILES) {
      builder.redirectOutput(podDir.resolve(logName + ".stdout.log").toFile());
    }
    return new Launched(builder.start(), paths);
  }

  /**
   * The container's termination message, as the kubelet reads it: the termination-log file, else
   * (FallbackToLogsOnError) the tail of {@code fallbackLog} when the container failed; or null.
   */
  static String terminationMessage(Path podDir, Path fallbackLog, int exitCode) {
    try {
      Path file = podDir.resolve("termination-log");
      if (Files.exists(file) && Files.size(file) > 0) {
        return tail(Files.readString(file), 4096);
      }
      if (exitCode != 0 && fallbackLog != null && Files.exists(fallbackLog)) {
        return tail(Files.readString(fallbackLog), 2048);
      }
    } catch (IOException e) {
      // no message
    }
    return null;
  }

  private static String tail(String text, int max) {
    return text.length() <= max ? text : text.substring(text.length() - max);
  }

  /**
   * Stops a container as the kubelet does: SIGTERM, up to {@code graceSeconds} to exit, then
   * SIGKILL. Returns the exit code, or -1 when the process would not die.
   */
  static int terminate(Process process, long graceSeconds) {
    process.destroy();
    try {
      if (!process.waitFor(graceSeconds, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
          return -1;
        }
      }
      return process.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      return -1;
    }
  }

  /** Creates the pod's volumes as local folders and returns the mount-path translation. */
  private PathTranslation mountVolumes(String namespace, PodSpec podSpec, Path podDir)
      throws IOException {
    PathTranslation paths = new PathTranslation();
    Container container = podSpec.getContainers().get(0);
    Path volumesDir = podDir.resolve("volumes");
    List<Runnable> projections = new ArrayList<>();
    for (VolumeMount mount : container.getVolumeMounts()) {
      Volume volume =
          podSpec.getVolumes().stream()
              .filter(v -> v.getName().equals(mount.getName()))
              .findFirst()
              .orElseThrow();
      Path local;
      if (volume.getPersistentVolumeClaim() != null) {
        String claim = volume.getPersistentVolumeClaim().getClaimName();
        local = claimFolders.getOrDefault(claim, stateDir.resolve("pvc").resolve(claim));
      } else if (volume.getConfigMap() != null) {
        local = volumesDir.resolve(volume.getName());
        String configMapName = volume.getConfigMap().getName();
        Path target = local;
        projections.add(() -> projectConfigMap(namespace, configMapName, target, paths));
      } else {
        local = volumesDir.resolve(volume.getName()); // emptyDir and anything else
      }
      Files.createDirectories(local);
      paths.add(mount.getMountPath(), local);
    }
    // ConfigMap files are written once every mount is known, so paths inside them translate too.
    projections.forEach(Runnable::run);
    return paths;
  }

  private void projectConfigMap(String namespace, String name, Path target, PathTranslation paths) {
    var configMap = client.configMaps().inNamespace(namespace).withName(name).get();
    if (configMap == null) {
      throw new IllegalStateException("ConfigMap " + namespace + "/" + name + " not found");
    }
    configMap
        .getData()
        .forEach(
            (key, value) -> {
              try {
                Files.writeString(target.resolve(key), paths.apply(value));
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
            });
  }

  private String resolveEnv(String namespace, Container container, EnvVar var) {
    if (var.getValueFrom() == null) {
      return var.getValue();
    }
    var from = var.getValueFrom();
    if (from.getSecretKeyRef() != null) {
      var ref = from.getSecretKeyRef();
      Secret secret = client.secrets().inNamespace(namespace).withName(ref.getName()).get();
      String encoded =
          secret == null || secret.getData() == null ? null : secret.getData().get(ref.getKey());
      if (encoded == null) {
        if (Boolean.TRUE.equals(ref.getOptional())) {
          return null;
        }
        throw new MissingSecretException(
            "secret \""
                + ref.getName()
                + "\" key \""
                + ref.getKey()
                + "\" not found for env "
                + var.getName());
      }
      return new String(Base64.getDecoder().decode(encoded), StandardCharsets.UTF_8);
    }
    if (from.getResourceFieldRef() != null
        && "requests.cpu".equals(from.getResourceFieldRef().getResource())) {
      Quantity cpu =
          container.getResources() == null || container.getResources().getRequests() == null
              ? null
              : container.getResources().getRequests().get("cpu");
      BigDecimal cores = cpu == null ? BigDecimal.ONE : cpu.getNumericalAmount();
      return cores.setScale(0, RoundingMode.CEILING).max(BigDecimal.ONE).toPlainString();
    }
    return null;
  }

  /** A secretKeyRef that cannot be resolved, as the kubelet's CreateContainerConfigError. */
  static final class MissingSecretException extends RuntimeException {
    MissingSecretException(String message) {
      super(message);
    }
  }
}
