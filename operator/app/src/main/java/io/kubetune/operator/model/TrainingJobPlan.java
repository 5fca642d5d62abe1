package io.kubetune.operator.model;

import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.operator.Labels;
import java.util.Objects;

/**
 * Decides what to do with the training Job. A Job's pod template is immutable, so the operator
 * never "updates" a Job: it creates one per training revision, replaces it when the revision
 * changes (restartNonce), and only flips {@code spec.suspend} in place.
 */
public final class TrainingJobPlan {

  public enum Action {
    /** No Job and the current revision has not finished: create it. */
    CREATE,
    /**
     * The Job runs another revision, or (while the run is not finished) other resources: delete it
     * (foreground) and create the new one after.
     */
    REPLACE,
    /** Only spec.suspend differs. */
    SET_SUSPEND,
    /** Waiting for a Job being deleted to disappear. */
    WAIT_FOR_DELETION,
    NONE
  }

  private TrainingJobPlan() {}

  public static Action decide(FineTuneJobModel model, Job existing) {
    String revision = model.trainingRevision();
    if (existing == null) {
      return finished(model.cr().getStatus(), revision) ? Action.NONE : Action.CREATE;
    }
    if (existing.getMetadata().getDeletionTimestamp() != null) {
      return Action.WAIT_FOR_DELETION;
    }
    if (!revision.equals(revisionOf(existing))) {
      return Action.REPLACE;
    }
    if (!jobFinished(existing) && !model.runtimeRevision().equals(runtimeOf(existing))) {
      return Action.REPLACE; // new resources for the same run; a finished run is left alone
    }
    boolean wantSuspended = model.suspend();
    boolean isSuspended = Boolean.TRUE.equals(existing.getSpec().getSuspend());
    if (wantSuspended == isSuspended || jobFinished(existing)) {
      return Action.NONE;
    }
    // Kueue suspends the Jobs it manages until it admits them and then unsuspends them itself:
    // the operator may suspend such a Job on request but must never unsuspend it, or the Job
    // would bypass the queue.
    if (!wantSuspended && isKueueManaged(existing)) {
      return Action.NONE;
    }
    return Action.SET_SUSPEND;
  }

  static boolean isKueueManaged(Job job) {
    var labels = job.getMetadata().getLabels();
    return labels != null && labels.containsKey(Labels.KUEUE_QUEUE_NAME);
  }

  static String runtimeOf(Job job) {
    var annotations = job.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(Labels.RUNTIME_ANNOTATION);
  }

  public static String revisionOf(Job job) {
    var annotations = job.getMetadata().getAnnotations();
    return annotations == null ? null : annotations.get(Labels.TRAINING_REVISION_ANNOTATION);
  }

  /**
   * True when this revision already ran to the end. Its Job may be gone (ttlSecondsAfterFinished or
   * deleted by hand): it must not be created again, or a finished run would train twice.
   */
  static boolean finished(FineTuneJobStatus status, String revision) {
    return status != null
        && Objects.equals(status.trainingRevision, revision)
        && status.phase != null
        && status.phase.isTerminal();
  }

  /** True when the Job has a Complete or Failed condition. */
  public static boolean jobFinished(Job job) {
    return job.getStatus() != null
        && job.getStatus().getConditions() != null
        && job.getStatus().getConditions().stream()
            .anyMatch(
                c ->
                    ("Complete".equals(c.getType()) || "Failed".equals(c.getType()))
                        && "True".equals(c.getStatus()));
  }
}
