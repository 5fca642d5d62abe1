package io.kubetune.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.PodFailurePolicyRule;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Labels;
import io.kubetune.operator.Names;
import io.kubetune.operator.TestResources;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TrainingJobBuilderTest {
  static final OperatorSettings SETTINGS = OperatorSettings.defaults();

  @Test
  void jobIsOwnedByTheFineTuneJobAsController() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    Job job = TrainingJobBuilder.build(FineTuneJobModel.from(cr, SETTINGS));

    assertThat(job.getMetadata().getName()).isEqualTo("house-style-lora-train");
    assertThat(job.getMetadata().getNamespace()).isEqualTo("ml-team");
    var owner = job.getMetadata().getOwnerReferences().get(0);
    assertThat(owner.getKind()).isEqualTo("FineTuneJob");
    assertThat(owner.getApiVersion()).isEqualTo("kubetune.io/v1alpha1");
    assertThat(owner.getUid()).isEqualTo(cr.getMetadata().getUid());
    assertThat(owner.getController()).isTrue();
    assertThat(owner.getBlockOwnerDeletion()).isTrue();
  }

  @Test
  void labelsAreTheStandardSetPlusKueueQueue() {
    Job job =
        TrainingJobBuilder.build(
            FineTuneJobModel.from(TestResources.example("lora-completion.yaml"), SETTINGS));
    assertThat(job.getMetadata().getLabels())
        .containsEntry(Labels.MANAGED_BY, "kubetune-operator")
        .containsEntry(Labels.NAME, "kubetune-trainer")
        .containsEntry(Labels.JOB, "house-style-lora")
        .containsEntry(Labels.KUEUE_QUEUE_NAME, "gpu-queue");
    // Pods carry the standard set (the operator finds them by it) but not Kueue's label.
    assertThat(job.getSpec().getTemplate().getMetadata().getLabels())
        .containsEntry(Labels.JOB, "house-style-lora")
        .doesNotContainKey(Labels.KUEUE_QUEUE_NAME);
    assertThat(job.getMetadata().getAnnotations())
        .containsEntry(
            Labels.TRAINING_REVISION_ANNOTATION,
            TrainingRevision.of(TestResources.example("lora-completion.yaml")));
  }

  @Test
  void jobSpecCarriesLifecycleFields() {
    Job job =
        TrainingJobBuilder.build(
            FineTuneJobModel.from(TestResources.example("lora-completion.yaml"), SETTINGS));
    assertThat(job.getSpec().getBackoffLimit()).isEqualTo(3);
    assertThat(job.getSpec().getActiveDeadlineSeconds()).isEqualTo(43200L);
    assertThat(job.getSpec().getTtlSecondsAfterFinished()).isEqualTo(86400);
    assertThat(job.getSpec().getSuspend()).isFalse();
    assertThat(job.getSpec().getCompletions()).isEqualTo(1);
    assertThat(job.getSpec().getTemplate().getSpec().getRestartPolicy()).isEqualTo("Never");

    FineTuneJob suspended = TestResources.minimal("s");
    suspended.getSpec().suspend = true;
    Job minimal = TrainingJobBuilder.build(FineTuneJobModel.from(suspended, SETTINGS));
    assertThat(minimal.getSpec().getSuspend()).isTrue();
    assertThat(minimal.getSpec().getBackoffLimit())
        .isEqualTo(io.kubetune.api.Bounds.BACKOFF_LIMIT_DEFAULT);
    assertThat(minimal.getSpec().getActiveDeadlineSeconds()).isNull();
    assertThat(minimal.getSpec().getTtlSecondsAfterFinished()).isNull();
  }

  @Test
  void podFailurePolicyIgnoresDisruptionAndFailsFastOnBadInput() {
    List<PodFailurePolicyRule> rules =
        TrainingJobBuilder.build(FineTuneJobModel.from(TestResources.minimal("p"), SETTINGS))
            .getSpec()
            .getPodFailurePolicy()
            .getRules();
    assertThat(rules).hasSize(3);
    assertThat(rules.get(0).getAction()).isEqualTo("Ignore");
    assertThat(rules.get(0).getOnPodConditions().get(0).getType()).isEqualTo("DisruptionTarget");
    assertThat(rules.get(1).getAction()).isEqualTo("FailJob");
    assertThat(rules.get(1).getOnExitCodes().getContainerName()).isEqualTo(Names.TRAINER_CONTAINER);
    assertThat(rules.get(1).getOnExitCodes().getValues())
        .containsExactly(
            TrainerExitCodes.BAD_INPUT,
            TrainerExitCodes.LOSS_NOT_FINITE,
            TrainerExitCodes.STORAGE_FULL);
    assertThat(rules.get(2).getAction()).isEqualTo("Ignore");
    assertThat(rules.get(2).getOnExitCodes().getValues())
        .containsExactly(TrainerExitCodes.PREEMPTED);
  }

  @Test
  void podPassesRestrictedPodSecurityStandard() {
    PodSpec pod =
        TrainingJobBuilder.build(
                FineTuneJobModel.from(TestResources.example("lora-completion.yaml"), SETTINGS))
            .getSpec()
            .getTemplate()
            .getSpec();
    assertThat(pod.getSecurityContext().getRunAsNonRoot()).isTrue();
    assertThat(pod.getSecurityContext().getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
    assertThat(pod.getHostNetwork()).isNull();
    assertThat(pod.getHostPID()).isNull();
    assertThat(pod.getAutomountServiceAccountToken()).isFalse();
    for (Container c : pod.getContainers()) {
      var sc = c.getSecurityContext();
      assertThat(sc.getAllowPrivilegeEscalation()).isFalse();
      assertThat(sc.getPrivileged()).isFalse();
      assertThat(sc.getReadOnlyRootFilesystem()).isTrue();
      assertThat(sc.getRunAsNonRoot()).isTrue();
      assertThat(sc.getCapabilities().getDrop()).containsExactly("ALL");
      assertThat(sc.getCapabilities().getAdd()).isNullOrEmpty();
      assertThat(sc.getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
    }
    // Restricted allows only these volume types.
    for (Volume v : pod.getVolumes()) {
      assertThat(
              v.getConfigMap() != null
                  || v.getEmptyDir() != null
                  || v.getPersistentVolumeClaim() != null
                  || v.getSecret() != null)
          .as("volume %s is of a type the restricted profile allows", v.getName())
          .isTrue();
    }
  }

  @Test
  void gpusBecomeLimitsAndATolerationIsAdded() {
    Container trainer = trainer(TestResources.example("lora-completion.yaml"));
    assertThat(trainer.getResources().getLimits())
        .containsEntry("nvidia.com/gpu", new Quantity("1"))
        .containsEntry("memory", new Quantity("16Gi"));
    assertThat(trainer.getResources().getRequests())
        .containsEntry("nvidia.com/gpu", new Quantity("1"))
        .containsEntry("cpu", new Quantity("4"));
    PodSpec pod =
        TrainingJobBuilder.build(
                FineTuneJobModel.from(TestResources.example("lora-completion.yaml"), SETTINGS))
            .getSpec()
            .getTemplate()
            .getSpec();
    assertThat(pod.getTolerations())
        .anyMatch(t -> "spot".equals(t.getKey()))
        .anyMatch(t -> "nvidia.com/gpu".equals(t.getKey()) && "Exists".equals(t.getOperator()));
    assertThat(pod.getNodeSelector())
        .containsEntry("node.kubernetes.io/instance-type", "g5.xlarge");
    assertThat(pod.getPriorityClassName()).isEqualTo("batch-low");
  }

  @Test
  void cpuOnlyJobGetsDefaultsAndNoGpu() {
    Container trainer = trainer(TestResources.minimal("cpu"));
    assertThat(trainer.getResources().getLimits()).containsOnlyKeys("memory");
    assertThat(trainer.getResources().getRequests())
        .containsEntry("cpu", new Quantity("1"))
        .containsEntry("memory", new Quantity("4Gi"));
    assertThat(
            TrainingJobBuilder.build(FineTuneJobModel.from(TestResources.minimal("cpu"), SETTINGS))
                .getSpec()
                .getTemplate()
                .getSpec()
                .getTolerations())
        .isNull();
  }

  @Test
  void credentialsAreReferencedFromTheSecretNeverCopied() {
    Container trainer = trainer(TestResources.example("lora-completion.yaml"));
    assertThat(trainer.getEnvFrom()).isNullOrEmpty();
    Map<String, EnvVar> env =
        trainer.getEnv().stream()
            .collect(java.util.stream.Collectors.toMap(EnvVar::getName, e -> e));
    for (String key : List.of("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")) {
      EnvVar var = env.get(key);
      assertThat(var.getValue()).isNull();
      assertThat(var.getValueFrom().getSecretKeyRef().getName()).isEqualTo("s3-credentials");
      assertThat(var.getValueFrom().getSecretKeyRef().getKey()).isEqualTo(key);
    }
    assertThat(env.get("AWS_SESSION_TOKEN").getValueFrom().getSecretKeyRef().getOptional())
        .isTrue();
    assertThat(env.get("DJL_CACHE_DIR").getValue()).startsWith(Names.CACHE_DIR);
    assertThat(env.get("KUBETUNE_CPUS").getValueFrom().getResourceFieldRef().getResource())
        .isEqualTo("requests.cpu");
  }

  @Test
  void trainerReadsItsConfigFromTheConfigMapAndWritesOnlyToVolumes() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    PodSpec pod =
        TrainingJobBuilder.build(FineTuneJobModel.from(cr, SETTINGS))
            .getSpec()
            .getTemplate()
            .getSpec();
    Container trainer = pod.getContainers().get(0);
    assertThat(trainer.getImage()).isEqualTo(SETTINGS.trainerImage());
    assertThat(trainer.getArgs())
        .containsExactly("train", "--config", "/etc/kubetune/trainer-config.json");
    assertThat(pod.getVolumes())
        .anyMatch(
            v ->
                v.getConfigMap() != null
                    && v.getConfigMap().getName().equals(Names.trainerConfigMap(cr)));
    assertThat(trainer.getVolumeMounts())
        .anyMatch(m -> m.getMountPath().equals("/etc/kubetune") && m.getReadOnly())
        .anyMatch(m -> m.getMountPath().equals("/tmp") && !m.getReadOnly())
        .anyMatch(m -> m.getMountPath().equals(Names.CACHE_DIR) && !m.getReadOnly());
    assertThat(trainer.getTerminationMessagePolicy()).isEqualTo("FallbackToLogsOnError");
  }

  @Test
  void pvcClaimsAreMountedReadOnlyExceptTheCheckpointClaim() {
    FineTuneJob cr = TestResources.example("full-finetune-pvc.yaml");
    PodSpec pod =
        TrainingJobBuilder.build(FineTuneJobModel.from(cr, SETTINGS))
            .getSpec()
            .getTemplate()
            .getSpec();
    // One claim holds model, data and checkpoints: mounted once, writable.
    assertThat(pod.getVolumes().stream().filter(v -> v.getPersistentVolumeClaim() != null))
        .singleElement()
        .satisfies(
            v -> {
              assertThat(v.getPersistentVolumeClaim().getClaimName()).isEqualTo("model-store");
              assertThat(v.getPersistentVolumeClaim().getReadOnly()).isFalse();
            });

    FineTuneJob split = TestResources.example("full-finetune-pvc.yaml");
    split.getSpec().checkpoints.uri = "pvc://scratch/ckpt/";
    PodSpec splitPod =
        TrainingJobBuilder.build(FineTuneJobModel.from(split, SETTINGS))
            .getSpec()
            .getTemplate()
            .getSpec();
    assertThat(splitPod.getContainers().get(0).getVolumeMounts())
        .anyMatch(
            m -> m.getMountPath().equals("/var/run/kubetune/pvc/model-store") && m.getReadOnly())
        .anyMatch(
            m -> m.getMountPath().equals("/var/run/kubetune/pvc/scratch") && !m.getReadOnly());
  }

  @Test
  void trainerImageOverrideWins() {
    FineTuneJob cr = TestResources.minimal("img");
    cr.getSpec().trainerImage = "registry.example.com/trainer@sha256:abc";
    assertThat(trainer(cr).getImage()).isEqualTo("registry.example.com/trainer@sha256:abc");
  }

  @Test
  void buildingTwiceGivesTheSameJob() {
    FineTuneJob cr = TestResources.example("lora-completion.yaml");
    assertThat(TrainingJobBuilder.build(FineTuneJobModel.from(cr, SETTINGS)))
        .isEqualTo(TrainingJobBuilder.build(FineTuneJobModel.from(cr, SETTINGS)));
  }

  private static Container trainer(FineTuneJob cr) {
    return TrainingJobBuilder.build(FineTuneJobModel.from(cr, SETTINGS))
        .getSpec()
        .getTemplate()
        .getSpec()
        .getContainers()
        .get(0);
  }
}
