package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import io.kubetune.api.Bounds;

/**
 * What to fine-tune and how. Fields that change the training result are immutable; to train again
 * with different settings, change them together with {@code restartNonce}. {@code resources} may
 * change at any time: the trainer pod is replaced with the new resources. {@code serving} and
 * {@code suspend} never restart training.
 *
 * <p>The immutability rule compares bounded fields only (every string has a maxLength), so its CEL
 * cost estimate stays small; {@code resources} (tolerations, node selectors) is left out.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = FineTuneJobSpec.TRAINING_FIELDS_IMMUTABLE_RULE,
    message =
        "training fields (baseModel, dataset, method, hyperparameters, evaluation, checkpoints,"
            + " storage,"
            + " trainerImage, backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished) are"
            + " immutable: change spec.restartNonce in the same update to start a new training"
            + " run",
    reason = "FieldValueForbidden")
public class FineTuneJobSpec {

  /**
   * CEL transition rule: training fields may only change together with restartNonce. Optional
   * fields are compared with has() first because CEL errors on absent keys.
   */
  static final String TRAINING_FIELDS_IMMUTABLE_RULE =
      "(has(self.restartNonce) != has(oldSelf.restartNonce)"
          + " || (has(self.restartNonce) && self.restartNonce != oldSelf.restartNonce))"
          + " || (self.baseModel == oldSelf.baseModel"
          + " && self.dataset == oldSelf.dataset"
          + " && self.method == oldSelf.method"
          + " && self.checkpoints == oldSelf.checkpoints"
          + " && (has(self.hyperparameters) == has(oldSelf.hyperparameters)"
          + " && (!has(self.hyperparameters) || self.hyperparameters == oldSelf.hyperparameters))"
          + " && (has(self.evaluation) == has(oldSelf.evaluation)"
          + " && (!has(self.evaluation) || self.evaluation == oldSelf.evaluation))"
          + " && (has(self.storage) == has(oldSelf.storage)"
          + " && (!has(self.storage) || self.storage == oldSelf.storage))"
          + " && (has(self.trainerImage) == has(oldSelf.trainerImage)"
          + " && (!has(self.trainerImage) || self.trainerImage == oldSelf.trainerImage))"
          + " && (has(self.backoffLimit) == has(oldSelf.backoffLimit)"
          + " && (!has(self.backoffLimit) || self.backoffLimit == oldSelf.backoffLimit))"
          + " && (has(self.activeDeadlineSeconds) == has(oldSelf.activeDeadlineSeconds)"
          + " && (!has(self.activeDeadlineSeconds)"
          + " || self.activeDeadlineSeconds == oldSelf.activeDeadlineSeconds))"
          + " && (has(self.ttlSecondsAfterFinished) == has(oldSelf.ttlSecondsAfterFinished)"
          + " && (!has(self.ttlSecondsAfterFinished)"
          + " || self.ttlSecondsAfterFinished == oldSelf.ttlSecondsAfterFinished)))";

  @Required
  @JsonPropertyDescription("The base model to fine-tune (Hugging Face format directory).")
  public BaseModelSpec baseModel;

  @Required
  @JsonPropertyDescription("Training data and how to read it.")
  public DatasetSpec dataset;

  @Required
  @JsonPropertyDescription("Fine-tuning method: LoRA adapter, full fine-tuning or frozen layers.")
  public MethodSpec method;

  @JsonPropertyDescription("Optimisation settings. Every field has a documented default.")
  public HyperparametersSpec hyperparameters;

  @JsonPropertyDescription(
      "How the held-out split is evaluated beyond loss and perplexity: generation metrics"
          + " (exact_match, bleu, rouge_l) for completion and chat datasets.")
  public EvaluationSpec evaluation;

  @JsonPropertyDescription(
      "Compute for the training pod: GPUs, CPU, memory and placement. May change while training:"
          + " the trainer pod is replaced with the new resources.")
  public ResourcesSpec resources;

  @Required
  @JsonPropertyDescription("Where and how often the trainer writes checkpoints and the result.")
  public CheckpointsSpec checkpoints;

  @JsonPropertyDescription(
      "S3-compatible object storage settings for s3:// URIs. Omit for AWS S3 with credentials"
          + " from the pod's environment (e.g. IRSA).")
  public StorageSpec storage;

  @JsonPropertyDescription("How to serve the tuned model once training succeeded.")
  public ServingSpec serving;

  @JsonPropertyDescription(
      "Suspend the training Job (Kueue-compatible). true stops running pods after the trainer"
          + " checkpointed; false resumes. Default false.")
  public Boolean suspend;

  @Min(0)
  @JsonPropertyDescription(
      "Seconds after the training Job finished before Kubernetes deletes it (and its pods). The"
          + " FineTuneJob and its status stay. Default: keep the Job.")
  public Integer ttlSecondsAfterFinished;

  @Min(1)
  @JsonPropertyDescription(
      "Upper bound in seconds on the training Job's run time, retries included. Default: none.")
  public Long activeDeadlineSeconds;

  @Min(Bounds.BACKOFF_LIMIT_MIN)
  @Max(Bounds.BACKOFF_LIMIT_MAX)
  @JsonPropertyDescription(
      "Pod failures tolerated before the Job fails. Preemption and node disruption do not count."
          + " Default "
          + Bounds.BACKOFF_LIMIT_DEFAULT
          + ".")
  public Integer backoffLimit;

  @Size(max = 512)
  @Pattern("^[^\\s]+$")
  @JsonPropertyDescription(
      "Trainer image override (repository[:tag][@digest]). Default: the image the operator was"
          + " installed with.")
  public String trainerImage;

  @Size(max = 63)
  @JsonPropertyDescription(
      "Change this (any new string) to start a fresh training run, optionally together with"
          + " changed training fields. The previous run's Job is replaced.")
  public String restartNonce;
}
