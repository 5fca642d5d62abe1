package io.kubetune.api.trainer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * What the trainer writes to the container's termination message file ({@code
 * /dev/termination-log}) before exiting, as one JSON object. The operator reads it from the pod
 * status, so it needs no storage credentials to explain a failure. Kubernetes keeps at most 4096
 * bytes; the trainer truncates {@code message}.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public class TrainerTermination {
  /** CamelCase reason, e.g. BadInput, LossNotFinite, Preempted, Completed. */
  public String reason;

  /** One line naming the problem and the fix. */
  public String message;

  /** Last optimizer step reached. */
  public Long step;
}
