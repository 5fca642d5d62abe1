package io.kubetune.operator.model;

import io.kubetune.api.Bounds;
import io.kubetune.api.StorageUri;
import io.kubetune.api.v1alpha1.EarlyStoppingSpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.ResourcesSpec;
import io.kubetune.api.v1alpha1.ServingSpec;
import io.kubetune.operator.Names;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * One FineTuneJob resolved once per reconcile (Strimzi's {@code KafkaCluster.fromCrd} shape):
 * defaults applied, names and URIs derived, the training revision fingerprinted. Every builder (the
 * Job, the trainer ConfigMap, the serving Deployment and Service) and the status reads this model,
 * never the raw spec, so a default or a derived URI has exactly one place where it is computed.
 *
 * <p>Built only from a spec that passed {@code FineTuneJobValidator}: an invalid URI throws here.
 */
public final class FineTuneJobModel {
  private final FineTuneJob cr;
  private final OperatorSettings settings;
  private final String trainingRevision;
  private final String runtimeRevision;
  private final Map<String, String> trainingFields;
  private final StorageUri checkpoints;
  private final UnaryOperator<String> userCheckpointUris;
  private final String adapterUri;
  private final String baseModelInPod;
  private final EvalMetric evaluationMetric;
  private final Map<String, Boolean> trainerClaims;
  private final ResourcesSpec trainingResources;
  private final ServingSpec serving;
  private final Duration readinessTimeout;

  private FineTuneJobModel(FineTuneJob cr, OperatorSettings settings) {
    this.cr = cr;
    this.settings = settings;
    FineTuneJobSpec spec = cr.getSpec();
    this.trainingRevision = TrainingRevision.of(cr);
    this.runtimeRevision = TrainingRevision.runtimeOf(cr);
    this.trainingFields = Collections.unmodifiableMap(TrainingRevision.fieldsOf(cr));
    this.checkpoints = StorageUri.parse(spec.checkpoints.uri).asFolder();
    this.userCheckpointUris = userUris(spec.checkpoints.uri);
    this.adapterUri = checkpoints.finalOutput(trainingRevision).toString();
    this.baseModelInPod = StorageUri.parse(spec.baseModel.uri).asFolder().inPod();
    this.evaluationMetric = evaluationMetric(spec);
    Map<String, Boolean> claims = new LinkedHashMap<>();
    addClaim(claims, spec.baseModel.uri, false);
    addClaim(claims, spec.dataset.train, false);
    addClaim(claims, spec.dataset.validation, false);
    addClaim(claims, spec.checkpoints.uri, true);
    this.trainerClaims = Collections.unmodifiableMap(claims);
    this.trainingResources = spec.resources != null ? spec.resources : new ResourcesSpec();
    this.serving =
        spec.serving != null && Boolean.TRUE.equals(spec.serving.enabled) ? spec.serving : null;
    this.readinessTimeout = ServingModel.readinessTimeout(spec.serving);
  }

  /** Resolves a validated FineTuneJob with the operator's installation settings. */
  public static FineTuneJobModel from(FineTuneJob cr, OperatorSettings settings) {
    return new FineTuneJobModel(cr, settings);
  }

  /** The custom resource this model was resolved from (metadata for labels, owner references). */
  public FineTuneJob cr() {
    return cr;
  }

  public FineTuneJobSpec spec() {
    return cr.getSpec();
  }

  public OperatorSettings settings() {
    return settings;
  }

  public String namespace() {
    return cr.getMetadata().getNamespace();
  }

  public String name() {
    return cr.getMetadata().getName();
  }

  public Long generation() {
    return cr.getMetadata().getGeneration();
  }

  /** Fingerprint of the training fields: a different one means a new run and a new Job. */
  public String trainingRevision() {
    return trainingRevision;
  }

  /** Fingerprint of the training pod's resources and placement. */
  public String runtimeRevision() {
    return runtimeRevision;
  }

  /** One fingerprint per training field, as status.trainingFields records them. */
  public Map<String, String> trainingFields() {
    return trainingFields;
  }

  public String trainingJobName() {
    return Names.trainingJob(cr);
  }

  public String trainerConfigMapName() {
    return Names.trainerConfigMap(cr);
  }

  public String servingDeploymentName() {
    return Names.servingDeployment(cr);
  }

  public String servingServiceName() {
    return Names.servingService(cr);
  }

  public String servingEndpoint() {
    return Names.servingEndpoint(cr);
  }

  /** checkpoints.uri as a folder, as the user wrote it. */
  public StorageUri checkpoints() {
    return checkpoints;
  }

  /**
   * Where this training run's trainer exports its adapter or weights, as the user wrote it:
   * checkpoints.uri + {@code final/<trainingRevision>/} ({@link
   * io.kubetune.api.TrainerLayout#exportFolder(String)}). A new run (restartNonce) gets a new
   * folder, so the files of the adapter being served are never overwritten; a resumed run (same
   * revision) exports into the same one.
   */
  public String adapterUri() {
    return adapterUri;
  }

  /** The base model folder as the pods see it. */
  public String baseModelInPod() {
    return baseModelInPod;
  }

  /** Rewrites a checkpoint URI the trainer reports (in-pod form) to the user's form. */
  public UnaryOperator<String> userCheckpointUris() {
    return userCheckpointUris;
  }

  /**
   * Rewrites URIs under checkpoints.uri from the trainer's in-pod form (pvc:// claims appear as
   * file:// mount paths) to the form the user wrote; other URIs pass unchanged.
   */
  public static UnaryOperator<String> userUris(String checkpointsUri) {
    if (checkpointsUri == null) {
      return UnaryOperator.identity();
    }
    String user = StorageUri.asFolder(checkpointsUri);
    String inPod;
    try {
      inPod = StorageUri.parse(user).asFolder().inPod();
    } catch (IllegalArgumentException notAUri) {
      return UnaryOperator.identity();
    }
    return uri -> uri.startsWith(inPod) ? user + uri.substring(inPod.length()) : uri;
  }

  /**
   * The metric the trainer ranks evaluations and checkpoints by (early stopping, best checkpoint,
   * retention, the export with exportBest): see {@link #evaluationMetric(FineTuneJobSpec)}.
   */
  public EvalMetric evaluationMetric() {
    return evaluationMetric;
  }

  /** The claims the trainer pod mounts, with whether it must write to them. */
  public Map<String, Boolean> trainerClaims() {
    return trainerClaims;
  }

  /** spec.resources, or an empty one: never null. */
  public ResourcesSpec trainingResources() {
    return trainingResources;
  }

  public boolean suspend() {
    return Boolean.TRUE.equals(cr.getSpec().suspend);
  }

  public int backoffLimit() {
    return Objects.requireNonNullElse(cr.getSpec().backoffLimit, Bounds.BACKOFF_LIMIT_DEFAULT);
  }

  /** The KubeTune image: the FineTuneJob's override, else the operator's setting. */
  public String image() {
    return cr.getSpec().trainerImage != null ? cr.getSpec().trainerImage : settings.trainerImage();
  }

  /** The storage region, default {@link Bounds#STORAGE_REGION_DEFAULT}; null without storage. */
  public String storageRegion() {
    return cr.getSpec().storage == null
        ? null
        : Objects.requireNonNullElse(cr.getSpec().storage.region, Bounds.STORAGE_REGION_DEFAULT);
  }

  /** True when spec.serving.enabled. */
  public boolean servingEnabled() {
    return serving != null;
  }

  /** spec.serving when serving is enabled, else null. */
  public ServingSpec serving() {
    return serving;
  }

  public int servingReplicas() {
    return serving == null || serving.replicas == null ? Bounds.REPLICAS_DEFAULT : serving.replicas;
  }

  /** serving.resources, or an empty one: never null. */
  public ResourcesSpec servingResources() {
    return serving == null || serving.resources == null ? new ResourcesSpec() : serving.resources;
  }

  /** serving.readinessTimeout, default 10 minutes. */
  public Duration readinessTimeout() {
    return readinessTimeout;
  }

  /**
   * The metric the trainer ranks evaluations and checkpoints by: {@code
   * hyperparameters.earlyStopping.metric}; else, with {@code checkpoints.exportBest}, {@code
   * serving.gate.metric} (the export is the best checkpoint on the gate's metric; the validator
   * refuses the two differing); else eval_loss.
   */
  public static EvalMetric evaluationMetric(FineTuneJobSpec spec) {
    HyperparametersSpec h = spec == null ? null : spec.hyperparameters;
    EarlyStoppingSpec early = h == null ? null : h.earlyStopping;
    if (early != null && early.metric != null) {
      return early.metric;
    }
    boolean exportBest =
        spec != null
            && spec.checkpoints != null
            && Boolean.TRUE.equals(spec.checkpoints.exportBest);
    if (exportBest
        && spec.serving != null
        && spec.serving.gate != null
        && spec.serving.gate.metric != null) {
      return spec.serving.gate.metric;
    }
    return EvalMetric.EVAL_LOSS;
  }

  private static void addClaim(Map<String, Boolean> claims, String uri, boolean writable) {
    if (uri == null) {
      return;
    }
    StorageUri.parse(uri)
        .claimName()
        .ifPresent(claim -> claims.merge(claim, writable, Boolean::logicalOr));
  }
}
