package io.kubetune.operator.status;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import java.util.List;

/**
 * What the reconciler saw of the current training run.
 *
 * @param job the training Job, or null if none exists
 * @param pods the Job's pods
 * @param jobIsStale the Job runs another training revision and is being replaced
 * @param trainerLog the tail of the newest trainer pod's log, or null if not read
 */
public record TrainingObservation(Job job, List<Pod> pods, boolean jobIsStale, String trainerLog) {
  public TrainingObservation(Job job, List<Pod> pods, boolean jobIsStale) {
    this(job, pods, jobIsStale, null);
  }

  public static TrainingObservation none() {
    return new TrainingObservation(null, List.of(), false, null);
  }
}
