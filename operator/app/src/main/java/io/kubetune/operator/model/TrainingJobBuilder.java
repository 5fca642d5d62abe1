package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodSpecBuilder;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
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
import java.util.List;
import java.util.Map;

/**
 * The batch/v1 Job that runs one training run. Pure: built from the FineTuneJob and the operator
 * settings only. Its pod passes Pod Security Standards "restricted".
 */
public final class TrainingJobBuilder {

  /**
   * The trainer needs at most 10 s (its default budget) to commit a checkpoint after SIGTERM; the
   * rest is margin for uploads on slow storage.
   */
  public static final long TERMINATION_GRACE_SECONDS = 60;

  private TrainingJobBuilder() {}

  public static Job build(FineTuneJobModel model) {
    FineTuneJob job = model.cr();
    FineTuneJobSpec spec = model.spec();
    String revision = model.trainingRevision();
    return new JobBuilder()
        .withNewMetadata()
        .withName(model.trainingJobName())
        .withNamespace(model.namespace())
        .withLabels(Labels.trainingJob(job))
        .withAnnotations(
            Map.of(
                Labels.TRAINING_REVISION_ANNOTATION,
                revision,
                Labels.RUNTIME_ANNOTATION,
                model.runtimeRevision()))
        .withOwnerReferences(Owners.controllerReference(job))
        .endMetadata()
        .withNewSpec()
        .withCompletions(1)
        .withParallelism(1)
        .withBackoffLimit(model.backoffLimit())
        .withActiveDeadlineSeconds(spec.activeDeadlineSeconds)
        .withTtlSecondsAfterFinished(spec.ttlSecondsAfterFinished)
        .withSuspend(model.suspend())
        .withPodFailurePolicy(podFailurePolicy())
        .withNewTemplate()
        .withNewMetadata()
        .withLabels(Labels.training(job))
        .withAnnotations(Map.of(Labels.TRAINING_REVISION_ANNOTATION, revision))
        .endMetadata()
        .withSpec(podSpec(model))
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
        .withValues(
            TrainerExitCodes.BAD_INPUT,
            TrainerExitCodes.LOSS_NOT_FINITE,
            TrainerExitCodes.STORAGE_FULL)
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

  static PodSpec podSpec(FineTuneJobModel model) {
    ResourcesSpec resources = model.trainingResources();
    List<Volume> volumes = new ArrayList<>();
    List<VolumeMount> mounts = new ArrayList<>();
    volumes.add(
        new VolumeBuilder()
            .withName(Names.CONFIG_VOLUME)
            .withNewConfigMap()
            .withName(model.trainerConfigMapName())
            .endConfigMap()
            .build());
    mounts.add(PodParts.mount(Names.CONFIG_VOLUME, Names.CONFIG_DIR, true));
    PodParts.addScratchVolumes(volumes, mounts);
    PodParts.addClaimVolumes(model.trainerClaims(), volumes, mounts);

    return new PodSpecBuilder()
        .withRestartPolicy("Never")
        // The trainer never talks to the Kubernetes API.
        .withAutomountServiceAccountToken(false)
        .withEnableServiceLinks(false)
        .withTerminationGracePeriodSeconds(TERMINATION_GRACE_SECONDS)
        .withNodeSelector(PodParts.nodeSelector(resources))
        .withTolerations(PodParts.tolerations(resources))
        .withPriorityClassName(resources.priorityClassName)
        .withSecurityContext(PodParts.restrictedPodSecurityContext())
        .withContainers(trainerContainer(model, resources, mounts))
        .withVolumes(volumes)
        .build();
  }

  static Container trainerContainer(
      FineTuneJobModel model, ResourcesSpec resources, List<VolumeMount> mounts) {
    OperatorSettings settings = model.settings();
    return new ContainerBuilder()
        .withName(Names.TRAINER_CONTAINER)
        .withImage(model.image())
        .withImagePullPolicy(settings.imagePullPolicy())
        .withArgs("train", "--config", Names.configFilePath())
        .withEnv(PodParts.containerEnv(model, Names.TRAINER_CONTAINER))
        .withResources(PodParts.resourceRequirements(resources, settings))
        .withVolumeMounts(mounts)
        .withTerminationMessagePath("/dev/termination-log")
        .withTerminationMessagePolicy("FallbackToLogsOnError")
        .withSecurityContext(PodParts.restrictedContainerSecurityContext())
        .build();
  }
}
