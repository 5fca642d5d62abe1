package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.CapabilitiesBuilder;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.EnvVarBuilder;
import io.fabric8.kubernetes.api.model.PodSecurityContext;
import io.fabric8.kubernetes.api.model.PodSecurityContextBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ResourceRequirements;
import io.fabric8.kubernetes.api.model.ResourceRequirementsBuilder;
import io.fabric8.kubernetes.api.model.SeccompProfileBuilder;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.SecurityContextBuilder;
import io.fabric8.kubernetes.api.model.Toleration;
import io.fabric8.kubernetes.api.model.TolerationBuilder;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeMountBuilder;
import io.kubetune.api.trainer.TrainerEnvironment;
import io.kubetune.api.v1alpha1.ResourcesSpec;
import io.kubetune.api.v1alpha1.StorageSpec;
import io.kubetune.operator.Names;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Pieces shared by the training pod and the serving pods: the "restricted" Pod Security Standard
 * contexts, resources with GPUs, tolerations, storage credentials by reference, and volumes.
 */
final class PodParts {
  /** Uid the KubeTune image runs as; any non-zero uid works with the restricted profile. */
  static final long IMAGE_UID = 1000;

  static final String AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID";
  static final String AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY";
  static final String AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN";

  private PodParts() {}

  static PodSecurityContext restrictedPodSecurityContext() {
    return new PodSecurityContextBuilder()
        .withRunAsNonRoot(true)
        .withRunAsUser(IMAGE_UID)
        .withRunAsGroup(IMAGE_UID)
        .withFsGroup(IMAGE_UID)
        .withSeccompProfile(new SeccompProfileBuilder().withType("RuntimeDefault").build())
        .build();
  }

  static SecurityContext restrictedContainerSecurityContext() {
    return new SecurityContextBuilder()
        .withAllowPrivilegeEscalation(false)
        .withPrivileged(false)
        .withReadOnlyRootFilesystem(true)
        .withRunAsNonRoot(true)
        .withCapabilities(new CapabilitiesBuilder().withDrop("ALL").build())
        .withSeccompProfile(new SeccompProfileBuilder().withType("RuntimeDefault").build())
        .build();
  }

  /**
   * Storage credentials from the Secret named in spec.storage, as secretKeyRefs: the operator only
   * references the Secret, its values never pass through the operator.
   */
  static List<EnvVar> storageCredentials(StorageSpec storage) {
    if (storage == null || storage.credentialsSecret == null) {
      return List.of();
    }
    return List.of(
        secretEnv(AWS_ACCESS_KEY_ID, storage.credentialsSecret, false),
        secretEnv(AWS_SECRET_ACCESS_KEY, storage.credentialsSecret, false),
        secretEnv(AWS_SESSION_TOKEN, storage.credentialsSecret, true));
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
    // Memory limit = request: a pod that outgrows its memory should fail visibly (OOMKilled)
    // rather than be evicted at random under node pressure.
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

  static Map<String, String> nodeSelector(ResourcesSpec resources) {
    return resources.nodeSelector == null ? null : new LinkedHashMap<>(resources.nodeSelector);
  }

  /**
   * The root filesystem is read-only: caches (DJL natives, downloaded model files) and temp files
   * go to emptyDirs.
   */
  static void addScratchVolumes(List<Volume> volumes, List<VolumeMount> mounts) {
    volumes.add(
        new VolumeBuilder().withName(Names.CACHE_VOLUME).withNewEmptyDir().endEmptyDir().build());
    mounts.add(mount(Names.CACHE_VOLUME, Names.CACHE_DIR, false));
    volumes.add(
        new VolumeBuilder().withName(Names.TMP_VOLUME).withNewEmptyDir().endEmptyDir().build());
    mounts.add(mount(Names.TMP_VOLUME, Names.TMP_DIR, false));
  }

  /** One volume per PersistentVolumeClaim, mounted under {@link Names#PVC_MOUNT_ROOT}. */
  static void addClaimVolumes(
      Map<String, Boolean> claimsWritable, List<Volume> volumes, List<VolumeMount> mounts) {
    claimsWritable.forEach(
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
  }

  static VolumeMount mount(String volume, String path, boolean readOnly) {
    return new VolumeMountBuilder()
        .withName(volume)
        .withMountPath(path)
        .withReadOnly(readOnly)
        .build();
  }

  /** Common environment plus the storage credentials by reference. */
  static List<EnvVar> containerEnv(FineTuneJobModel model, String container) {
    List<EnvVar> env = new ArrayList<>(commonEnv(model.namespace(), model.name(), container));
    env.addAll(storageCredentials(model.spec().storage));
    return env;
  }

  /** Environment every KubeTune container gets: identity, writable HOME/TMP, DJL offline. */
  static List<EnvVar> commonEnv(String namespace, String name, String container) {
    List<EnvVar> env = new ArrayList<>();
    env.add(new EnvVar("KUBETUNE_NAMESPACE", namespace, null));
    env.add(new EnvVar("KUBETUNE_JOB", name, null));
    env.add(new EnvVar("HOME", Names.TMP_DIR, null));
    env.add(new EnvVar("TMPDIR", Names.TMP_DIR, null));
    env.add(new EnvVar("DJL_CACHE_DIR", Names.CACHE_DIR + "/djl", null));
    // s3:// models and data are downloaded to the cache volume, not the (small) /tmp.
    env.add(new EnvVar(TrainerEnvironment.STAGING_DIR, Names.CACHE_DIR + "/staging", null));
    env.add(new EnvVar("OPT_OUT_TRACKING", "true", null));
    // Thread count follows the CPU request (rounded up), not the node's core count.
    env.add(
        new EnvVarBuilder()
            .withName("KUBETUNE_CPUS")
            .withNewValueFrom()
            .withNewResourceFieldRef()
            .withContainerName(container)
            .withResource("requests.cpu")
            .withDivisor(new Quantity("1"))
            .endResourceFieldRef()
            .endValueFrom()
            .build());
    return env;
  }
}
