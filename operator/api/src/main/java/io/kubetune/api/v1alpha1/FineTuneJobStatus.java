package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/** Observed state, written only by the operator. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class FineTuneJobStatus {

  @JsonPropertyDescription("The metadata.generation this status describes.")
  public Long observedGeneration;

  @JsonPropertyDescription(
      "Summary for humans and kubectl get: Pending, Validating, Queued, Running, Succeeded,"
          + " Failed, Suspended, Serving. Scripts should use conditions.")
  public Phase phase;

  @JsonPropertyDescription("Human-readable detail for the current phase.")
  public String message;

  @JsonPropertyDescription(
      "Kubernetes-style conditions: Validated, Running, Complete, Failed, Promoted, Serving,"
          + " Ready (kubectl wait --for=condition=Complete).")
  public List<Condition> conditions = new ArrayList<>();

  @JsonPropertyDescription("When the current training run's Job was first seen active (RFC 3339).")
  public String startTime;

  @JsonPropertyDescription("When the current training run finished (RFC 3339).")
  public String completionTime;

  @JsonPropertyDescription("Training pods started for the current run (retries included).")
  public Integer attempts;

  @JsonPropertyDescription("Name of the batch/v1 Job running the current training run.")
  public String jobName;

  @JsonPropertyDescription("The newest trainer pod of the current run (kubectl logs <podName>).")
  public String podName;

  @JsonPropertyDescription(
      "Fingerprint of the training fields (and restartNonce) of the current run. A new value"
          + " means a new run.")
  public String trainingRevision;

  @JsonPropertyDescription(
      "Fingerprint of each training field of the current run, by field name. The operator refuses"
          + " a change of any of them without a new spec.restartNonce (as the CRD's rule does"
          + " where the API server enforces it).")
  public java.util.Map<String, String> trainingFields;

  @JsonPropertyDescription("Training progress reported by the trainer.")
  public ProgressStatus progress;

  @JsonPropertyDescription(
      "Committed checkpoints of the current run, from the trainer's log: the newest 10, oldest"
          + " first. Older ones may already be deleted by the trainer's retention"
          + " (checkpoints.keepLast); latestCheckpoint and bestCheckpoint are kept. Entries the"
          + " trainer rejected when it resumed are kept with 'rejected' set.")
  public List<CheckpointRecord> checkpoints;

  @JsonPropertyDescription(
      "The newest committed checkpoint of the current run. Never moves back to an older step,"
          + " except when the trainer rejects newer checkpoints at resume (see checkpointWarnings):"
          + " then it is the one the run resumed from. A new run (training revision) starts"
          + " without one.")
  public CheckpointRecord latestCheckpoint;

  @JsonPropertyDescription(
      "The best checkpoint of the current run by the evaluation metric"
          + " (hyperparameters.earlyStopping.metric, default eval_loss; ties go to the newer step),"
          + " kept when it has left checkpoints[].")
  public CheckpointRecord bestCheckpoint;

  @JsonPropertyDescription(
      "Checkpoints of the current run the trainer rejected at resume (CheckpointSkipped, e.g. a"
          + " checksum mismatch) or could not write (CheckpointFailed), one entry per reason and"
          + " step, the 10 highest steps, ordered by step. Each is also a Warning Event.")
  public List<CheckpointWarning> checkpointWarnings;

  @JsonPropertyDescription("The exported result of a successful run.")
  public AdapterStatus adapter;

  @JsonPropertyDescription("The serving deployment, when serving.enabled.")
  public ServingStatus serving;
}
