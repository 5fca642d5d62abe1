package io.kubetune.api.trainer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.Map;

/**
 * What the trainer writes to the container's termination message file ({@code
 * /dev/termination-log}) before exiting, as one JSON object. The operator reads it from the pod
 * status, so it needs no storage credentials to explain a failure or to learn the result's digest
 * and evaluation metrics (for the quality gate). Kubernetes keeps at most 4096 bytes; the trainer
 * truncates {@code message} first.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public class TrainerTermination {
  /** CamelCase reason, e.g. BadInput, LossNotFinite, StorageFull, Preempted, Completed. */
  public String reason;

  /** One line naming the problem and the fix. */
  public String message;

  /** Last optimizer step reached. */
  public Long step;

  /** On success: the format of the export, {@code peft-lora} or {@code hf-full}. */
  public String format;

  /** On success: sha256 (hex) of the exported weights file. */
  public String digest;

  /** On success: held-out metrics of the untouched base model (metric key to value). */
  public Map<String, Double> baseMetrics;

  /** On success: held-out metrics of the tuned model, same keys as {@code baseMetrics}. */
  public Map<String, Double> tunedMetrics;
}
