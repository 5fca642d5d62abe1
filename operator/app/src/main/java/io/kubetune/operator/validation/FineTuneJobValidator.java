package io.kubetune.operator.validation;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Quantity;
import io.kubetune.api.Bounds;
import io.kubetune.api.InvalidFieldException;
import io.kubetune.api.StorageUri;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import io.kubetune.api.v1alpha1.GateSpec;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.api.v1alpha1.ResourcesSpec;
import io.kubetune.operator.model.TrainingRevision;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * Checks a FineTuneJob before anything is created. It repeats the CRD's structural and CEL rules
 * (an API server enforces those, but the embedded local-mode API and older clusters do not) and
 * adds the semantic rules a schema cannot express. Each check is a small method a validating
 * webhook could reuse.
 */
public final class FineTuneJobValidator {

  private static final ObjectMapper TREE = new ObjectMapper();

  private static final String RESTART_NONCE = "restartNonce";

  private FineTuneJobValidator() {}

  public static List<ValidationProblem> validate(FineTuneJob job) {
    List<ValidationProblem> problems = new ArrayList<>();
    validateName(job, problems);
    FineTuneJobSpec spec = job.getSpec();
    if (spec == null) {
      problems.add(
          new ValidationProblem(
              "spec", "is missing", "add baseModel, dataset, method and checkpoints"));
      return problems;
    }
    validateBaseModel(spec, problems);
    validateDataset(spec, problems);
    validateMethod(spec, problems);
    validateHyperparameters(spec, problems);
    validateResources(spec, problems);
    validateCheckpoints(spec, problems);
    validateStorage(spec, problems);
    validateServing(spec, problems);
    validateBounds(spec, problems);
    validateTrainingFieldsUnchanged(job, problems);
    return problems;
  }

  static void validateName(FineTuneJob job, List<ValidationProblem> problems) {
    String name = job.getMetadata().getName();
    if (name != null && name.length() > 63) {
      problems.add(
          new ValidationProblem(
              "metadata.name",
              "is " + name.length() + " characters long; it is used as a label value (max 63)",
              "use a name of at most 63 characters"));
    }
  }

  static void validateBaseModel(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    if (spec.baseModel == null) {
      problems.add(required("spec.baseModel", "set baseModel.uri to the model directory"));
      return;
    }
    validateUri("spec.baseModel.uri", spec.baseModel.uri, true, problems);
  }

  static void validateDataset(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    DatasetSpec dataset = spec.dataset;
    if (dataset == null) {
      problems.add(required("spec.dataset", "set dataset.train and dataset.format"));
      return;
    }
    validateUri("spec.dataset.train", dataset.train, true, problems);
    if (dataset.train != null && dataset.train.endsWith("/")) {
      problems.add(
          new ValidationProblem(
              "spec.dataset.train",
              "'" + dataset.train + "' is a folder",
              "point it at a JSONL file, e.g. " + dataset.train + "train.jsonl"));
    }
    validateUri("spec.dataset.validation", dataset.validation, false, problems);
    if (dataset.format == null) {
      problems.add(required("spec.dataset.format", "set it to completion, chat or classification"));
    }
    if (dataset.validation != null && dataset.validationSplit != null) {
      problems.add(
          new ValidationProblem(
              "spec.dataset.validationSplit",
              "is set together with spec.dataset.validation",
              "keep only one: a validation file or a split fraction"));
    }
    if (dataset.labels != null) {
      if (dataset.format != DatasetSpec.Format.classification) {
        problems.add(
            new ValidationProblem(
                "spec.dataset.labels",
                "is only used with format classification",
                "remove it, or set dataset.format: classification"));
      }
      Set<String> seen = new HashSet<>();
      for (String label : dataset.labels) {
        if (label == null || label.isBlank() || !seen.add(label)) {
          problems.add(
              new ValidationProblem(
                  "spec.dataset.labels",
                  "contains an empty or repeated label '" + label + "'",
                  "list each label once"));
          break;
        }
      }
      if (dataset.labels.size() < 2) {
        problems.add(
            new ValidationProblem(
                "spec.dataset.labels",
                "has fewer than 2 labels",
                "list at least two labels, or omit it to use those found in the data"));
      }
    }
  }

  static void validateMethod(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    MethodSpec method = spec.method;
    if (method == null || method.type == null) {
      problems.add(required("spec.method.type", "set it to LoRA, Full or FreezeLayers"));
      return;
    }
    if (method.lora != null && method.type != MethodSpec.Type.LoRA) {
      problems.add(
          new ValidationProblem(
              "spec.method.lora",
              "is set but method.type is " + method.type,
              "remove method.lora, or set method.type: LoRA"));
    }
    if (method.freeze != null && method.type != MethodSpec.Type.FreezeLayers) {
      problems.add(
          new ValidationProblem(
              "spec.method.freeze",
              "is set but method.type is " + method.type,
              "remove method.freeze, or set method.type: FreezeLayers"));
    }
    if (method.type == MethodSpec.Type.FreezeLayers
        && (method.freeze == null || method.freeze.trainableLayers == null)) {
      problems.add(
          required(
              "spec.method.freeze.trainableLayers",
              "set how many top decoder layers to train, e.g. freeze: {trainableLayers: 2}"));
    }
    LoraSpec lora = method.lora;
    if (lora != null) {
      if (lora.targetModules != null) {
        Set<String> seen = new HashSet<>();
        for (String module : lora.targetModules) {
          if (!LoraSpec.KNOWN_TARGET_MODULES.contains(module)) {
            problems.add(
                new ValidationProblem(
                    "spec.method.lora.targetModules",
                    "contains unknown module '" + module + "'",
                    "use Llama module names: " + String.join(", ", LoraSpec.KNOWN_TARGET_MODULES)));
          } else if (!seen.add(module)) {
            problems.add(
                new ValidationProblem(
                    "spec.method.lora.targetModules",
                    "lists '" + module + "' twice",
                    "list each module once"));
          }
        }
        if (lora.targetModules.isEmpty()) {
          problems.add(
              new ValidationProblem(
                  "spec.method.lora.targetModules",
                  "is empty",
                  "list at least one module, e.g. [q_proj, v_proj], or omit it"));
        }
      }
    }
  }

  static void validateHyperparameters(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    HyperparametersSpec h = spec.hyperparameters;
    if (h == null) {
      return;
    }
    if (h.epochs != null && h.maxSteps != null) {
      problems.add(
          new ValidationProblem(
              "spec.hyperparameters.maxSteps",
              "is set together with hyperparameters.epochs",
              "keep only one of epochs and maxSteps"));
    }
    if (h.maxSteps != null && h.warmupSteps != null && h.warmupSteps >= h.maxSteps) {
      problems.add(
          new ValidationProblem(
              "spec.hyperparameters.warmupSteps",
              "(" + h.warmupSteps + ") is not below maxSteps (" + h.maxSteps + ")",
              "use fewer warm-up steps than training steps"));
    }
    if (h.precision == HyperparametersSpec.Precision.bf16
        && spec.method != null
        && spec.method.type == MethodSpec.Type.Full) {
      // bf16 applies to frozen weights; Full freezes none, so it would silently train in fp32.
      problems.add(
          new ValidationProblem(
              "spec.hyperparameters.precision",
              "is bf16, which keeps the frozen base weights in bf16, but method Full trains every"
                  + " weight in fp32",
              "use precision fp32 with method Full, or method LoRA or FreezeLayers with bf16"));
    }
    if (h.earlyStopping != null) {
      if (!hasValidationData(spec)) {
        problems.add(
            new ValidationProblem(
                "spec.hyperparameters.earlyStopping",
                "needs a validation split to watch",
                "set dataset.validation or dataset.validationSplit"));
      }
      checkMetricFitsFormat(
          "spec.hyperparameters.earlyStopping.metric", h.earlyStopping.metric, spec, problems);
      if (h.earlyStopping.patience == null) {
        problems.add(
            required(
                "spec.hyperparameters.earlyStopping.patience",
                "set how many evaluations without improvement to tolerate, e.g. 3"));
      }
    }
  }

  static void validateResources(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    ResourcesSpec r = spec.resources;
    if (r == null) {
      return;
    }
    checkPositiveQuantity("spec.resources.cpu", r.cpu, "e.g. 4 or 3500m", problems);
    checkPositiveQuantity("spec.resources.memory", r.memory, "e.g. 16Gi", problems);
  }

  static void validateCheckpoints(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    if (spec.checkpoints == null) {
      problems.add(
          required(
              "spec.checkpoints", "set checkpoints.uri to an object-storage prefix for this job"));
      return;
    }
    validateUri("spec.checkpoints.uri", spec.checkpoints.uri, true, problems);
    if (Boolean.TRUE.equals(spec.checkpoints.exportBest)) {
      if (!hasValidationData(spec)) {
        problems.add(
            new ValidationProblem(
                "spec.checkpoints.exportBest",
                "needs held-out data to rank evaluations",
                "set dataset.validation or dataset.validationSplit, or drop exportBest"));
      }
      EvalMetric early =
          spec.hyperparameters == null || spec.hyperparameters.earlyStopping == null
              ? null
              : spec.hyperparameters.earlyStopping.metric;
      EvalMetric gate =
          spec.serving == null || spec.serving.gate == null ? null : spec.serving.gate.metric;
      if (early != null && gate != null && early != gate) {
        problems.add(
            new ValidationProblem(
                "spec.checkpoints.exportBest",
                "would rank by serving.gate.metric "
                    + gate.key()
                    + " while hyperparameters.earlyStopping.metric is "
                    + early.key(),
                "use the same metric for the gate and early stopping, or drop exportBest"));
      }
    }
    if (spec.checkpoints.uri != null
        && spec.baseModel != null
        && spec.baseModel.uri != null
        && folder(spec.checkpoints.uri).startsWith(folder(spec.baseModel.uri))) {
      problems.add(
          new ValidationProblem(
              "spec.checkpoints.uri",
              "is inside the base model folder " + spec.baseModel.uri,
              "write checkpoints to a separate prefix, e.g. s3://bucket/checkpoints/<job>/"));
    }
  }

  static void validateServing(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    validateCanary(spec, problems);
    if (spec.serving == null || spec.serving.gate == null) {
      return;
    }
    GateSpec gate = spec.serving.gate;
    if (gate.metric == null) {
      problems.add(required("spec.serving.gate.metric", "name the metric the gate compares"));
    }
    boolean mustBeatBase = Boolean.TRUE.equals(gate.mustBeatBase);
    if ((gate.threshold != null) == mustBeatBase) {
      problems.add(
          new ValidationProblem(
              "spec.serving.gate",
              mustBeatBase ? "sets both threshold and mustBeatBase" : "sets no criterion",
              "set exactly one of gate.threshold or gate.mustBeatBase: true"));
    }
    if (!hasValidationData(spec)) {
      problems.add(
          new ValidationProblem(
              "spec.serving.gate",
              "needs held-out data to evaluate",
              "set dataset.validation or dataset.validationSplit"));
    }
    checkMetricFitsFormat("spec.serving.gate.metric", gate.metric, spec, problems);
  }

  /**
   * serving.canary.duration has the CRD's duration format and is not zero (weight and maxErrorRate
   * are checked against {@link Bounds} with every other numeric field).
   */
  static void validateCanary(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    if (spec.serving == null || spec.serving.canary == null) {
      return;
    }
    String duration = spec.serving.canary.duration;
    if (duration != null
        && (!duration.matches("^([0-9]+(s|m|h))+$")
            || duration.replaceAll("[^1-9]", "").isEmpty())) {
      problems.add(
          new ValidationProblem(
              "spec.serving.canary.duration",
              "is '" + duration + "', not a positive duration",
              "write it as numbers with units s, m or h, e.g. 90s, 10m or 1h30m"));
    }
  }

  /**
   * Training fields change only together with {@code restartNonce}: the CRD's transition rule,
   * enforced here too because local mode and API servers without CEL do not. Compared with the
   * per-field fingerprints the status keeps of the current run.
   */
  static void validateTrainingFieldsUnchanged(FineTuneJob job, List<ValidationProblem> problems) {
    Map<String, String> run = job.getStatus() == null ? null : job.getStatus().trainingFields;
    if (run == null || job.getSpec() == null) {
      return;
    }
    Map<String, String> now = TrainingRevision.fieldsOf(job);
    if (!Objects.equals(run.get(RESTART_NONCE), now.get(RESTART_NONCE))) {
      return; // a deliberate new run
    }
    Set<String> names = new TreeSet<>(run.keySet());
    names.addAll(now.keySet());
    for (String name : names) {
      if (!Objects.equals(run.get(name), now.get(name))) {
        problems.add(
            new ValidationProblem(
                "spec." + name,
                "changed after training started, without a new spec.restartNonce",
                "change spec.restartNonce in the same update to start a new training run, or"
                    + " revert the change (the running Job is left alone)"));
      }
    }
  }

  /**
   * Every numeric field against the shared table of bounds (the same one the CRD is built from).
   */
  static void validateBounds(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    for (Bounds.Violation v : Bounds.check(TREE.valueToTree(spec))) {
      problems.add(new ValidationProblem("spec." + v.field(), v.problem(), v.fix()));
    }
  }

  private static void checkMetricFitsFormat(
      String field, EvalMetric metric, FineTuneJobSpec spec, List<ValidationProblem> problems) {
    if (metric == null || spec.dataset == null || spec.dataset.format == null) {
      return;
    }
    if (metric.classificationOnly() && !metric.appliesTo(spec.dataset.format)) {
      problems.add(
          new ValidationProblem(
              field,
              metric.key() + " is only computed for classification datasets",
              "use eval_loss or perplexity for " + spec.dataset.format + " data"));
    } else if (metric.generationOnly() && !metric.appliesTo(spec.dataset.format)) {
      problems.add(
          new ValidationProblem(
              field,
              metric.key() + " is only computed for completion and chat datasets",
              "use accuracy, f1, precision, recall, eval_loss or perplexity for classification"
                  + " data"));
    } else if (metric.generationOnly() && generationMaxExamples(spec) == 0) {
      problems.add(
          new ValidationProblem(
              field,
              metric.key()
                  + " needs generation metrics, which evaluation.generation.maxExamples: 0"
                  + " turns off",
              "set evaluation.generation.maxExamples to at least 1 (default "
                  + Bounds.GENERATION_MAX_EXAMPLES_DEFAULT
                  + ")"));
    }
  }

  private static int generationMaxExamples(FineTuneJobSpec spec) {
    return spec.evaluation != null
            && spec.evaluation.generation != null
            && spec.evaluation.generation.maxExamples != null
        ? spec.evaluation.generation.maxExamples
        : Bounds.GENERATION_MAX_EXAMPLES_DEFAULT;
  }

  private static boolean hasValidationData(FineTuneJobSpec spec) {
    return spec.dataset != null
        && (spec.dataset.validation != null || spec.dataset.validationSplit != null);
  }

  static void validateUri(
      String field, String uri, boolean required, List<ValidationProblem> problems) {
    if (uri == null) {
      if (required) {
        problems.add(required(field, StorageUri.HINT));
      }
      return;
    }
    try {
      StorageUri.parse(field, uri);
    } catch (InvalidFieldException e) {
      problems.add(new ValidationProblem(e.field(), e.problem(), e.fix()));
    }
  }

  /** The S3 endpoint: http(s), and never credentials in the URL (they would be rendered). */
  static void validateStorage(FineTuneJobSpec spec, List<ValidationProblem> problems) {
    if (spec.storage == null) {
      return;
    }
    try {
      StorageUri.checkEndpoint("spec.storage.endpoint", spec.storage.endpoint);
    } catch (InvalidFieldException e) {
      problems.add(new ValidationProblem(e.field(), e.problem(), e.fix()));
    }
  }

  private static void checkPositiveQuantity(
      String field, Quantity quantity, String example, List<ValidationProblem> problems) {
    if (quantity == null) {
      return;
    }
    try {
      if (quantity.getNumericalAmount().compareTo(BigDecimal.ZERO) <= 0) {
        problems.add(
            new ValidationProblem(field, "is " + quantity, "use a positive quantity, " + example));
      }
    } catch (RuntimeException e) {
      problems.add(
          new ValidationProblem(field, "'" + quantity + "' is not a quantity", "use " + example));
    }
  }

  private static String folder(String uri) {
    return uri.endsWith("/") ? uri : uri + "/";
  }

  private static ValidationProblem required(String field, String fix) {
    return new ValidationProblem(field, "is required", fix);
  }
}
