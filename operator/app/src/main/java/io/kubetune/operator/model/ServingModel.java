package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.api.model.apps.DeploymentSpec;
import io.kubetune.api.StorageUri;
import io.kubetune.api.trainer.TrainerEnvironment;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.ResourcesSpec;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.api.v1alpha1.StorageSpec;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import io.kubetune.operator.support.Hashes;
import io.kubetune.operator.support.Json;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The serving Deployment and Service: the KubeTune image in {@code serve} mode with the base model
 * and one adapter, an OpenAI-compatible API on port 8000. Pure.
 */
public final class ServingModel {
  public static final Duration DEFAULT_READINESS_TIMEOUT = Duration.ofMinutes(10);

  /** An adapter to serve: where it is (as the user wrote it) and its digest. */
  public record Adapter(String uri, String digest) {}

  private ServingModel() {}

  public static Deployment deployment(FineTuneJobModel model, Adapter adapter) {
    FineTuneJob job = model.cr();
    ResourcesSpec resources = model.servingResources();
    List<Volume> volumes = new ArrayList<>();
    List<VolumeMount> mounts = new ArrayList<>();
    PodParts.addScratchVolumes(volumes, mounts);
    PodParts.addClaimVolumes(
        readOnlyClaims(model.spec().baseModel.uri, adapter.uri()), volumes, mounts);

    Map<String, String> podAnnotations = new LinkedHashMap<>();
    podAnnotations.put(Labels.ADAPTER_URI_ANNOTATION, adapter.uri());
    podAnnotations.put(Labels.ADAPTER_DIGEST_ANNOTATION, adapter.digest());

    Deployment deployment =
        new DeploymentBuilder()
            .withNewMetadata()
            .withName(model.servingDeploymentName())
            .withNamespace(model.namespace())
            .withLabels(Labels.serving(job))
            .withOwnerReferences(Owners.controllerReference(job))
            .endMetadata()
            .withNewSpec()
            .withReplicas(model.servingReplicas())
            .withNewSelector()
            .withMatchLabels(Labels.servingSelector(job))
            .endSelector()
            // New pods must be ready before an old one goes: the previous adapter keeps serving
            // throughout a rollout, and through a rollback.
            .withNewStrategy()
            .withType("RollingUpdate")
            .withNewRollingUpdate()
            .withMaxUnavailable(new IntOrString(0))
            .withMaxSurge(new IntOrString(1))
            .endRollingUpdate()
            .endStrategy()
            .withProgressDeadlineSeconds((int) model.readinessTimeout().toSeconds())
            .withNewTemplate()
            .withNewMetadata()
            .withLabels(Labels.serving(job))
            .withAnnotations(podAnnotations)
            .endMetadata()
            .withNewSpec()
            .withAutomountServiceAccountToken(false)
            .withEnableServiceLinks(false)
            .withTerminationGracePeriodSeconds(30L)
            .withNodeSelector(PodParts.nodeSelector(resources))
            .withTolerations(PodParts.tolerations(resources))
            .withPriorityClassName(resources.priorityClassName)
            .withSecurityContext(PodParts.restrictedPodSecurityContext())
            .withContainers(serverContainer(model, adapter, resources, mounts))
            .withVolumes(volumes)
            .endSpec()
            .endTemplate()
            .endSpec()
            .build();
    deployment
        .getMetadata()
        .setAnnotations(
            new LinkedHashMap<>(
                Map.of(Labels.SERVING_HASH_ANNOTATION, hash(deployment.getSpec()))));
    return deployment;
  }

  static Container serverContainer(
      FineTuneJobModel model, Adapter adapter, ResourcesSpec resources, List<VolumeMount> mounts) {
    OperatorSettings settings = model.settings();
    List<EnvVar> env = PodParts.containerEnv(model, Names.SERVER_CONTAINER);
    env.addAll(storageEnv(model));
    return new ContainerBuilder()
        .withName(Names.SERVER_CONTAINER)
        .withImage(model.image())
        .withImagePullPolicy(settings.imagePullPolicy())
        .withArgs(
            "serve",
            "--model",
            model.baseModelInPod(),
            "--adapter",
            model.name() + "=" + StorageUri.parse(adapter.uri()).inPod(),
            "--adapter-digest",
            adapter.digest(),
            "--port",
            Integer.toString(Names.SERVING_PORT))
        .withEnv(env)
        .addNewPort()
        .withName("http")
        .withContainerPort(Names.SERVING_PORT)
        .endPort()
        // Loading a large base model can take minutes: the startup probe gives it time, the
        // readiness probe gates traffic (and the rollout) on model and adapter being loaded.
        .withNewStartupProbe()
        .withNewHttpGet()
        .withPath("/health/live")
        .withPort(new IntOrString("http"))
        .endHttpGet()
        .withPeriodSeconds(5)
        .withFailureThreshold(120)
        .endStartupProbe()
        .withNewReadinessProbe()
        .withNewHttpGet()
        .withPath("/health/ready")
        .withPort(new IntOrString("http"))
        .endHttpGet()
        .withPeriodSeconds(5)
        .endReadinessProbe()
        .withNewLivenessProbe()
        .withNewHttpGet()
        .withPath("/health/live")
        .withPort(new IntOrString("http"))
        .endHttpGet()
        .withPeriodSeconds(20)
        .endLivenessProbe()
        .withResources(PodParts.resourceRequirements(resources, settings))
        .withVolumeMounts(mounts)
        .withSecurityContext(PodParts.restrictedContainerSecurityContext())
        .build();
  }

  public static Service service(FineTuneJobModel model) {
    FineTuneJob job = model.cr();
    return new ServiceBuilder()
        .withNewMetadata()
        .withName(model.servingServiceName())
        .withNamespace(model.namespace())
        .withLabels(Labels.serving(job))
        .withOwnerReferences(Owners.controllerReference(job))
        .endMetadata()
        .withNewSpec()
        .withType("ClusterIP")
        .withSelector(Labels.servingSelector(job))
        .addNewPort()
        .withName("http")
        .withPort(Names.SERVING_PORT)
        .withTargetPort(new IntOrString("http"))
        .withProtocol("TCP")
        .endPort()
        .endSpec()
        .build();
  }

  /** S3 settings the server reads from the environment (AWS SDK conventions where they exist). */
  static List<EnvVar> storageEnv(FineTuneJobModel model) {
    StorageSpec storage = model.spec().storage;
    if (storage == null) {
      return List.of();
    }
    List<EnvVar> env = new ArrayList<>();
    if (storage.endpoint != null) {
      env.add(new EnvVar("AWS_ENDPOINT_URL_S3", storage.endpoint, null));
    }
    env.add(new EnvVar("AWS_REGION", model.storageRegion(), null));
    env.add(
        new EnvVar(
            TrainerEnvironment.S3_PATH_STYLE,
            Boolean.toString(Boolean.TRUE.equals(storage.pathStyle)),
            null));
    return env;
  }

  static Map<String, Boolean> readOnlyClaims(String... uris) {
    Map<String, Boolean> claims = new LinkedHashMap<>();
    for (String uri : uris) {
      StorageUri.parse(uri).claimName().ifPresent(claim -> claims.put(claim, false));
    }
    return claims;
  }

  /** serving.readinessTimeout ("90s", "10m", "1h30m"), default 10 minutes. */
  public static Duration readinessTimeout(ServingSpec serving) {
    if (serving == null || serving.readinessTimeout == null) {
      return DEFAULT_READINESS_TIMEOUT;
    }
    Duration total = Duration.ZERO;
    var matcher =
        java.util.regex.Pattern.compile("([0-9]+)([smh])").matcher(serving.readinessTimeout);
    while (matcher.find()) {
      long value = Long.parseLong(matcher.group(1));
      total =
          total.plus(
              switch (matcher.group(2)) {
                case "h" -> Duration.ofHours(value);
                case "m" -> Duration.ofMinutes(value);
                default -> Duration.ofSeconds(value);
              });
    }
    return total.isZero() ? DEFAULT_READINESS_TIMEOUT : total;
  }

  /** Fingerprint of a desired spec; a Deployment is rewritten only when it changes. */
  static String hash(Object spec) {
    return Hashes.sha256Hex(Json.canonical(spec), 8);
  }

  public static String hashOf(Deployment deployment) {
    var annotations = deployment.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(Labels.SERVING_HASH_ANNOTATION);
  }

  /** The adapter in a Deployment's pod template, or null. */
  public static Adapter adapterOf(Deployment deployment) {
    DeploymentSpec spec = deployment.getSpec();
    var annotations =
        spec == null || spec.getTemplate() == null || spec.getTemplate().getMetadata() == null
            ? null
            : spec.getTemplate().getMetadata().getAnnotations();
    if (annotations == null || !annotations.containsKey(Labels.ADAPTER_DIGEST_ANNOTATION)) {
      return null;
    }
    return new Adapter(
        annotations.get(Labels.ADAPTER_URI_ANNOTATION),
        annotations.get(Labels.ADAPTER_DIGEST_ANNOTATION));
  }
}
