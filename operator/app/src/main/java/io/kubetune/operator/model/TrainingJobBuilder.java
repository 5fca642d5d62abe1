package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.Capabilities;
import io.fabric8.kubernetes.api.model.CapabilitiesBuilder;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.EnvVarBuilder;
import io.fabric8.kubernetes.api.model.PodSecurityContextBuilder;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodSpecBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ResourceRequirements;
import io.fabric8.kubernetes.api.model.ResourceRequirementsBuilder;
import io.fabric8.kubernetes.api.model.SeccompProfileBuilder;
import io.fabric8.kubernetes.api.model.SecurityContextBuilder;
import io.fabric8.kubernetes.api.model.Toleration;
import io.fabric8.kubernetes.api.model.TolerationBuilder;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeMountBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.PodFailurePolicy;
import io.fabric8.kubernetes.api.model.batch.v1.PodFailurePolicyBuilder;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import io.kubetune.api.v1alpha1.ResourcesSpec;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The batch/v1 Job that runs one training run. Pure: built from the FineTuneJob and the operator
 * settings only. Its pod passes Pod Security Standards "restricted".
 */
public final class TrainingJobBuilder {

  public static final int DEFAULT_BACKOFF_LIMIT = 3;

  /**
   * The trainer needs at most 10 s (its default budget) to commit a checkpoint after SIGTERM; the
   * rest is margin for uploads on slow storage.
   */
  public static final long TERMINATION_GRACE_SECONDS = 60;

  /** Uid the trainer image runs as; any non-zero uid works with the restricted profile. */
  public static final long TRAINER_UID = 1000;

  static final String AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID";
  static final String AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY";
  static final String AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN";

  private TrainingJobBuilder() {}

  public static Job build(FineTuneJob job, OperatorSettings settings) {
    FineTuneJobSpec spec = job.getSpec();
    String revision = TrainingRevision.of(job);
    return new JobBuilder()
        .withNewMetadata()
        .withName(Names.trainingJob(job))
        .withNamespace(job.getMetadata().getNamespace())
        .withLabels(Labels.trainingJob(job))
        .withAnnotations(Map.of(Labels.TRAINING_REVISION_ANNOTATION, revision))
        .withOwnerReferences(Owners.controllerReference(job))
        .endMetadata()
        .withNewSpec()
        .withCompletions(1)
        .withParallelism(1)
        .withBackoffLimit(Objects.requireNonNullElse(spec.backoffLimit, DEFAULT_BACKOFF_LIMIT))
        .withActiveDeadlineSeconds(spec.activeDeadlineSeconds)
        .withTtlSecondsAfterFinished(spec.ttlSecondsAfterFinished)
        .withSuspend(Boolean.TRUE.equals(spec.suspend))
        .withPodFailurePolicy(podFailurePolicy())
        .withNewTemplate()
        .withNewMetadata()
        .withLabels(Labels.training(job))
        .withAnnotations(Map.of(Labels.TRAINING_REVISION_ANNOTATION, revision))
        .endMetadata()
        .withSpec(podSpec(job, settings))
        .endTemplate()
        .endSpec()
        .build();
  }

  /**
   * Preemption and node disruption do not count against backoffLimit; a trainer that exits with
   * "bad input" or "loss not finite" fails the Job at once, since a retry would fail the same way;
   * a trainer that checkpointed after SIGTERM ("preempted") is retried without counting.
   */
  static PodFailurePolicy podFailurePolicy() {
    return new PodFailurePolicyBuilder()
        .addNewRule()
        .withAction("Ignore")
        .addNewOnPodCondition()
        .withType("DisruptionTarget")
        .withStatus("True")
        .endOnPodCondition()
        .endRule()
        .addNewRule()
        .withAction("FailJob")
        .withNewOnExitCodes()
        .withContainerName(Names.TRAINER_CONTAINER)
        .withOperator("In")
        .withValues(TrainerExitCodes.BAD_INPUT, TrainerExitCodes.LOSS_NOT_FINITE)
        .endOnExitCodes()
        .endRule()
        .addNewRule()
        .withAction("Ignore")
        .withNewOnExitCodes()
        .withContainerName(Names.TRAINER_CONTAINER)
        .withOperator("In")
        .withValues(TrainerExitCodes.PREEMPTED)
        .endOnExitCodes()
        .endRule()
        .build();
  }

  static PodSpec podSpec(FineTuneJob job, OperatorSettings settings) {
    ResourcesSpec resources =
        job.getSpec().resources != null ? job.getSpec().resources : new ResourcesSpec();
    List<Volume> volumes = new ArrayList<>();
    List<VolumeMount> mounts = new ArrayList<>();
    volumes.add(
        new VolumeBuilder()
            .withName(Names.CONFIG_VOLUME)
            .withNewConfigMap()
            .withName(Names.trainerConfigMap(job))
            .endConfigMap()
            .build());
    mounts.add(mount(Names.CONFIG_VOLUME, Names.CONFIG_DIR, true));
    // The root filesystem is read-only: caches (DJL natives, downloaded model files) and temp
    // files go to emptyDirs.
    volumes.add(
        new VolumeBuilder().withName(Names.CACHE_VOLUME).withNewEmptyDir().endEmptyDir().build());
    mounts.add(mount(Names.CACHE_VOLUME, Names.CACHE_DIR, false));
    volumes.add(
        new VolumeBuilder().withName(Names.TMP_VOLUME).withNewEmptyDir().endEmptyDir().build());
    mounts.add(mount(Names.TMP_VOLUME, Names.TMP_DIR, false));
    TrainerConfigModel.pvcClaims(job)
        .forEach(
            (claim, writable) -> {
              volumes.add(
                  new VolumeBuilder()
                      .withName(Names.pvcVolume(claim))
                      .withNewPersistentVolumeClaim()
                      .withClaimName(claim)
                      .withReadOnly(!writable)
                      .endPersistentVolumeClaim()
                      .build());
              mounts.add(mount(Names.pvcVolume(claim), Names.pvcMountPath(claim), !writable));
            });

    return new PodSpecBuilder()
        .withRestartPolicy("Never")
        // The trainer never talks to the Kubernetes API.
        .withAutomountServiceAccountToken(false)
        .withEnableServiceLinks(false)
        .withTerminationGracePeriodSeconds(TERMINATION_GRACE_SECONDS)
        .withNodeSelector(
            resources.nodeSelector == null ? null : new LinkedHashMap<>(resources.nodeSelector))
        .withTolerations(tolerations(resources))
        .withPriorityClassName(resources.priorityClassName)
        .withSecurityContext(
            new PodSecurityContextBuilder()
                .withRunAsNonRoot(true)
                .withRunAsUser(TRAINER_UID)
                .withRunAsGroup(TRAINER_UID)
                .withFsGroup(TRAINER_UID)
                .withSeccompProfile(new SeccompProfileBuilder().withType("RuntimeDefault").build())
                .build())
        .withContainers(trainerContainer(job, settings, resources, mounts))
        .withVolumes(volumes)
        .build();
  }

  static Container trainerContainer(
      FineTuneJob job,
      OperatorSettings settings,
      ResourcesSpec resources,
      List<VolumeMount> mounts) {
    String image =
        job.getSpec().trainerImage != null ? job.getSpec().trainerImage : settings.trainerImage();
    Capabilities dropAll = new CapabilitiesBuilder().withDrop("ALL").build();
    return new ContainerBuilder()
        .withName(Names.TRAINER_CONTAINER)
        .withImage(image)
        .withImagePullPolicy(settings.imagePullPolicy())
        .withArgs("train", "--config", Names.configFilePath())
        .withEnv(env(job))
        .withResources(resourceRequirements(resources, settings))
        .withVolumeMounts(mounts)
        .withTerminationMessagePath("/dev/termination-log")
        .withTerminationMessagePolicy("FallbackToLogsOnError")
        .withSecurityContext(
            new SecurityContextBuilder()
                .withAllowPrivilegeEscalation(false)
                .withPrivileged(false)
                .withReadOnlyRootFilesystem(true)
                .withRunAsNonRoot(true)
                .withCapabilities(dropAll)
                .withSeccompProfile(new SeccompProfileBuilder().withType("RuntimeDefault").build())
                .build())
        .build();
  }

  static List<EnvVar> env(FineTuneJob job) {
    List<EnvVar> env = new ArrayList<>();
    env.add(new EnvVar("KUBETUNE_NAMESPACE", job.getMetadata().getNamespace(), null));
    env.add(new EnvVar("KUBETUNE_JOB", job.getMetadata().getName(), null));
    env.add(new EnvVar("HOME", Names.TMP_DIR, null));
    env.add(new EnvVar("TMPDIR", Names.TMP_DIR, null));
    env.add(new EnvVar("DJL_CACHE_DIR", Names.CACHE_DIR + "/djl", null));
    env.add(new EnvVar("OPT_OUT_TRACKING", "true", null));
    // Thread count follows the CPU request (rounded up), not the node's core count.
    env.add(
        new EnvVarBuilder()
            .withName("KUBETUNE_CPUS")
            .withNewValueFrom()
            .withNewResourceFieldRef()
            .withContainerName(Names.TRAINER_CONTAINER)
            .withResource("requests.cpu")
            .withDivisor(new Quantity("1"))
            .endResourceFieldRef()
            .endValueFrom()
            .build());
    var storage = job.getSpec().storage;
    if (storage != null && storage.credentialsSecret != null) {
      // The operator only references the Secret; its values never pass through the operator.
      env.add(secretEnv(AWS_ACCESS_KEY_ID, storage.credentialsSecret, false));
      env.add(secretEnv(AWS_SECRET_ACCESS_KEY, storage.credentialsSecret, false));
      env.add(secretEnv(AWS_SESSION_TOKEN, storage.credentialsSecret, true));
    }
    return env;
  }

  private static EnvVar secretEnv(String key, String secret, boolean optional) {
    return new EnvVarBuilder()
        .withName(key)
        .withNewValueFrom()
        .withNewSecretKeyRef()
        .withName(secret)
        .withKey(key)
        .withOptional(optional ? Boolean.TRUE : null)
        .endSecretKeyRef()
        .endValueFrom()
        .build();
  }

  static ResourceRequirements resourceRequirements(
      ResourcesSpec resources, OperatorSettings settings) {
    Quantity cpu = resources.cpu != null ? resources.cpu : new Quantity(settings.defaultCpu());
    Quantity memory =
        resources.memory != null ? resources.memory : new Quantity(settings.defaultMemory());
    Map<String, Quantity> requests = new LinkedHashMap<>();
    Map<String, Quantity> limits = new LinkedHashMap<>();
    requests.put("cpu", cpu);
    requests.put("memory", memory);
    // Memory limit = request: a training pod that outgrows its memory should fail visibly
    // (OOMKilled) rather than be evicted at random under node pressure.
    limits.put("memory", memory);
    int gpus = Objects.requireNonNullElse(resources.gpus, 0);
    if (gpus > 0) {
      Quantity count = new Quantity(Integer.toString(gpus));
      requests.put(gpuResourceName(resources), count);
      limits.put(gpuResourceName(resources), count);
    }
    return new ResourceRequirementsBuilder().withRequests(requests).withLimits(limits).build();
  }

  static String gpuResourceName(ResourcesSpec resources) {
    return resources.gpuResourceName != null
        ? resources.gpuResourceName
        : ResourcesSpec.DEFAULT_GPU_RESOURCE_NAME;
  }

  /** The user's tolerations, plus one for the GPU taint that GPU node pools usually carry. */
  static List<Toleration> tolerations(ResourcesSpec resources) {
    List<Toleration> tolerations = new ArrayList<>();
    if (resources.tolerations != null) {
      tolerations.addAll(resources.tolerations);
    }
    if (Objects.requireNonNullElse(resources.gpus, 0) > 0) {
      String key = gpuResourceName(resources);
      boolean present = tolerations.stream().anyMatch(t -> key.equals(t.getKey()));
      if (!present) {
        tolerations.add(
            new TolerationBuilder()
                .withKey(key)
                .withOperator("Exists")
                .withEffect("NoSchedule")
                .build());
      }
    }
    return tolerations.isEmpty() ? null : tolerations;
  }

  private static VolumeMount mount(String volume, String path, boolean readOnly) {
    return new VolumeMountBuilder()
        .withName(volume)
        .withMountPath(path)
        .withReadOnly(readOnly)
        .build();
  }
}
