package io.kubetune.operator;

import io.kubetune.api.v1alpha1.FineTuneJob;

/** Every name the operator derives from a FineTuneJob. No other class concatenates names. */
public final class Names {

  /** Job names become a pod label value (job-name), so they must fit in 63 characters. */
  static final int MAX_NAME_LENGTH = 63;

  public static final String TRAINER_CONTAINER = "trainer";
  public static final String CONFIG_VOLUME = "trainer-config";
  public static final String CACHE_VOLUME = "cache";
  public static final String TMP_VOLUME = "tmp";

  public static final String CONFIG_DIR = "/etc/kubetune";
  public static final String CACHE_DIR = "/var/cache/kubetune";
  public static final String TMP_DIR = "/tmp";
  public static final String PVC_MOUNT_ROOT = io.kubetune.api.TrainerLayout.PVC_MOUNT_ROOT;

  private Names() {}

  public static String trainingJob(FineTuneJob job) {
    return withSuffix(job.getMetadata().getName(), "-train");
  }

  public static String trainerConfigMap(FineTuneJob job) {
    return withSuffix(job.getMetadata().getName(), "-trainer-config");
  }

  public static String servingDeployment(FineTuneJob job) {
    return withSuffix(job.getMetadata().getName(), "-serve");
  }

  public static String servingService(FineTuneJob job) {
    return withSuffix(job.getMetadata().getName(), "-serve");
  }

  public static final String SERVER_CONTAINER = "server";
  public static final int SERVING_PORT = 8000;

  /** The OpenAI-compatible base URL clients in the cluster use. */
  public static String servingEndpoint(FineTuneJob job) {
    return "http://"
        + servingService(job)
        + "."
        + job.getMetadata().getNamespace()
        + ".svc:"
        + SERVING_PORT
        + "/v1";
  }

  public static String pvcVolume(String claimName) {
    return withSuffix("pvc-" + claimName, "");
  }

  public static String pvcMountPath(String claimName) {
    return PVC_MOUNT_ROOT + "/" + claimName;
  }

  public static String configFilePath() {
    return CONFIG_DIR + "/" + io.kubetune.api.trainer.TrainerConfig.CONFIG_MAP_KEY;
  }

  /** A stable Event name: the object's name and a hash of its uid and the occurrence key. */
  public static String event(io.fabric8.kubernetes.api.model.HasMetadata about, String key) {
    return about.getMetadata().getName()
        + "."
        + shortHash(about.getMetadata().getUid() + "|" + key)
        + shortHash(key + "|" + about.getMetadata().getUid());
  }

  /** name + suffix, shortened with a stable hash when longer than 63 characters. */
  static String withSuffix(String name, String suffix) {
    String full = name + suffix;
    if (full.length() <= MAX_NAME_LENGTH) {
      return full;
    }
    String hash = shortHash(name);
    int keep = MAX_NAME_LENGTH - suffix.length() - hash.length() - 1;
    String head = name.substring(0, keep).replaceAll("[-.]+$", "");
    return head + "-" + hash + suffix;
  }

  static String shortHash(String value) {
    return io.kubetune.operator.support.Hashes.sha256Hex(value, 4);
  }
}
