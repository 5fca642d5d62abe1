package io.kubetune.api.trainer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import io.kubetune.api.v1alpha1.BaseModelSpec;
import io.kubetune.api.v1alpha1.CheckpointsSpec;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.GenerationEvalSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.MethodSpec;

/**
 * The contract between the operator and the trainer image: a versioned JSON document the operator
 * renders into a ConfigMap (key {@link #CONFIG_MAP_KEY}) and the trainer reads with {@code trainer
 * train --config <file>}. See docs/trainer-config.md.
 *
 * <p>The operator resolves every default, so the trainer sees explicit values; URIs are either
 * {@code s3://} (credentials from the standard AWS environment variables) or {@code file://}
 * (pvc:// URIs of the FineTuneJob, rewritten to where the operator mounted the claim).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public class TrainerConfig {

  /** Bumped on incompatible changes; the trainer refuses versions it does not know. */
  public static final String API_VERSION = "kubetune.io/trainer-config/v1";

  public static final String KIND = "TrainerConfig";

  /** Key of the document in the ConfigMap, and its file name in the trainer pod. */
  public static final String CONFIG_MAP_KEY = "trainer-config.json";

  public String apiVersion = API_VERSION;
  public String kind = KIND;

  /** Which FineTuneJob and run this is; used for logs, metadata and the adapter card. */
  public JobIdentity job;

  public BaseModelSpec baseModel;
  public DatasetSpec dataset;
  public MethodSpec method;
  public HyperparametersSpec hyperparameters;
  public CheckpointsSpec checkpoints;

  /** S3 settings; {@code credentialsSecret} is always null here (credentials come via env). */
  public StorageSettings storage;

  public Output output;

  public Evaluation evaluation;

  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class JobIdentity {
    public String namespace;
    public String name;
    public String uid;

    /** Fingerprint of the training fields; checkpoints of another revision are never resumed. */
    public String trainingRevision;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class StorageSettings {
    public String endpoint;
    public String region;
    public Boolean pathStyle;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Output {
    /** Where the final adapter (PEFT) or full weights (HF layout) and metrics.json go. */
    public String uri;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Evaluation {
    /** Metric for early stopping, best-checkpoint selection and the quality gate. */
    public EvalMetric metric;

    /** Also evaluate the untouched base model on the held-out split, for the quality gate. */
    public Boolean compareWithBase;

    /**
     * Generation metrics (exact_match, bleu, rouge_l) on held-out prompts, limits resolved; null or
     * maxExamples 0: none (always null for classification).
     */
    public GenerationEvalSpec generation;
  }
}
