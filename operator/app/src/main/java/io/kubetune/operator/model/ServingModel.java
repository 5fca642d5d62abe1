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
import io.kubetune.api.Bounds;
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
 *
 * <p>During a canary the same Deployment's pods serve two adapters in-process: the stable one and
 * the canary ({@code --canary NAME=URI --canary-digest SHA --canary-weight N}), which answers
 * {@code weight} percent of the requests for the model. The Service and its endpoint never change;
 * promotion is a Deployment with the canary as the adapter and no canary, rollback one with the
 * stable adapter alone. Both are rolling updates with maxUnavailable 0, so no request fails.
 */
public final class ServingModel {
  public static final Duration DEFAULT_READINESS_TIMEOUT = Duration.ofMinutes(10);

  /** An adapter to serve: where it is (as the user wrote it) and its digest. */
  public record Adapter(String uri, String digest) {}

  /** A new adapter served next to the stable one, answering {@code weight} percent of requests. */
  public record Canary(Adapter adapter, int weight) {}

  /** Pod-template annotations of a canary (next to the stable adapter's). */
  public static final String CANARY_URI_ANNOTATION = "kubetune.io/canary-adapter-uri";

  public static final String CANARY_DIGEST_ANNOTATION = "kubetune.io/canary-adapter-digest";
  public static final String CANARY_WEIGHT_ANNOTATION = "kubetune.io/canary-weight";

  private ServingModel() {}

  public static Deployment deployment(FineTuneJobModel model, Adapter adapter) {
    return deployment(model, adapter, null);
  }

  /**
   * The Deployment serving {@code adapter} and, when {@code canary} is not null, the canary next to
   * it in the same pods.
   */
  public static Deployment deployment(FineTuneJobModel model, Adapter adapter, Canary canary) {
    FineTuneJob job = model.cr();
    ResourcesSpec resources = model.servingResources();
    List<Volume> volumes = new ArrayList<>();
    List<VolumeMount> mounts = new ArrayList<>();
    PodParts.addScratchVolumes(volumes, mounts);
    PodParts.addClaimVolumes(
        canary == null
            ? readOnlyClaims(model.spec().baseModel.uri, adapter.uri())
            : readOnlyClaims(model.spec().baseModel.uri, adapter.uri(), canary.adapter().uri()),
        volumes,
        mounts);

    Map<String, String> podAnnotations = new LinkedHashMap<>();
    podAnnotations.put(Labels.ADAPTER_URI_ANNOTATION, adapter.uri());
    podAnnotations.put(Labels.ADAPTER_DIGEST_ANNOTATION, adapter.digest());
    if (canary != null) {
      podAnnotations.put(CANARY_URI_ANNOTATION, canary.adapter().uri());
      podAnnotations.put(CANARY_DIGEST_ANNOTATION, canary.adapter().digest());
      podAnnotations.put(CANARY_WEIGHT_ANNOTATION, Integer.toString(canary.weight()));
    }

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
            .withContainers(serverContainer(model, adapter, canary, resources, mounts))
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
      FineTuneJobModel model,
      Adapter adapter,
      Canary canary,
      ResourcesSpec resources,
      List<VolumeMount> mounts) {
    OperatorSettings settings = model.settings();
    List<EnvVar> env = PodParts.containerEnv(model, Names.SERVER_CONTAINER);
    env.addAll(storageEnv(model));
    List<String> args = new ArrayList<>();
    args.add("serve");
    args.add("--model");
    args.add(model.baseModelInPod());
    args.add("--adapter");
    args.add(model.name() + "=" + StorageUri.parse(adapter.uri()).inPod());
    args.add("--adapter-digest");
    args.add(adapter.digest());
    if (canary != null) {
      args.add("--canary");
      args.add(model.name() + "=" + StorageUri.parse(canary.adapter().uri()).inPod());
      args.add("--canary-digest");
      args.add(canary.adapter().digest());
      args.add("--canary-weight");
      args.add(Integer.toString(canary.weight()));
    }
    args.add("--port");
    args.add(Integer.toString(Names.SERVING_PORT));
    return new ContainerBuilder()
        .withName(Names.SERVER_CONTAINER)
        .withImage(model.image())
        .withImagePullPolicy(settings.imagePullPolicy())
        .withArgs(args)
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
    Duration total = duration(serving.readinessTimeout);
    return total.isZero() ? DEFAULT_READINESS_TIMEOUT : total;
  }

  /** Whether a retrained adapter is served as a canary first (serving.canary is present). */
  public static boolean canaryEnabled(ServingSpec serving) {
    return serving != null && serving.canary != null;
  }

  /** serving.canary.weight, default {@link Bounds#CANARY_WEIGHT_DEFAULT}. */
  public static int canaryWeight(ServingSpec serving) {
    return serving == null || serving.canary == null || serving.canary.weight == null
        ? Bounds.CANARY_WEIGHT_DEFAULT
        : serving.canary.weight;
  }

  /**
   * serving.canary.duration ("90s", "10m", "1h30m"), default {@link
   * Bounds#CANARY_DURATION_DEFAULT}.
   */
  public static Duration canaryDuration(ServingSpec serving) {
    Duration fallback = duration(Bounds.CANARY_DURATION_DEFAULT);
    if (serving == null || serving.canary == null || serving.canary.duration == null) {
      return fallback;
    }
    Duration total = duration(serving.canary.duration);
    return total.isZero() ? fallback : total;
  }

  /** serving.canary.maxErrorRate, default {@link Bounds#CANARY_MAX_ERROR_RATE_DEFAULT}. */
  public static double canaryMaxErrorRate(ServingSpec serving) {
    return serving == null || serving.canary == null || serving.canary.maxErrorRate == null
        ? Bounds.CANARY_MAX_ERROR_RATE_DEFAULT
        : serving.canary.maxErrorRate;
  }

  /** A duration in the CRD's format ("90s", "10m", "1h30m"); zero when nothing matches. */
  static Duration duration(String text) {
    Duration total = Duration.ZERO;
    var matcher = java.util.regex.Pattern.compile("([0-9]+)([smh])").matcher(text);
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
    return total;
  }

  /** Fingerprint of a desired spec; a Deployment is rewritten only when it changes. */
  static String hash(Object spec) {
    return Hashes.sha256Hex(Json.canonical(spec), 8);
  }

  public static String hashOf(Deployment deployment) {
    var annotations = deployment.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(Labels.SERVING_HASH_ANNOTATION);
  }

  /** The canary in a Deployment's pod template, or null. */
  public static Canary canaryOf(Deployment deployment) {
    DeploymentSpec spec = deployment.getSpec();
    var annotations =
        spec == null || spec.getTemplate() == null || spec.getTemplate().getMetadata() == null
            ? null
            : spec.getTemplate().getMetadata().getAnnotations();
    if (annotations == null || !annotations.containsKey(CANARY_DIGEST_ANNOTATION)) {
      return null;
    }
    return new Canary(
        new Adapter(
            annotations.get(CANARY_URI_ANNOTATION), annotations.get(CANARY_DIGEST_ANNOTATION)),
        Integer.parseInt(annotations.get(CANARY_WEIGHT_ANNOTATION)));
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
