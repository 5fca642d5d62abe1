package io.kubetune.operator.model;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import io.kubetune.operator.support.Hashes;
import io.kubetune.operator.support.Json;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Fingerprint of everything that shapes a training run: the spec without {@code suspend} and {@code
 * serving} (which never restart training), plus {@code restartNonce}. A different fingerprint means
 * a new run and a new Job.
 */
public final class TrainingRevision {
  private TrainingRevision() {}

  public static String of(FineTuneJob job) {
    return Hashes.sha256Hex(Json.canonical(trainingFields(job)), 6);
  }

  /**
   * A fingerprint per training field (restartNonce included), by field name: what the operator
   * compares to enforce that training fields change only together with restartNonce.
   */
  public static Map<String, String> fieldsOf(FineTuneJob job) {
    JsonNode tree = Json.mapper().valueToTree(trainingFields(job));
    Map<String, String> fields = new TreeMap<>();
    tree.fields()
        .forEachRemaining(
            e -> {
              if (!e.getValue().isNull()) {
                fields.put(e.getKey(), Hashes.sha256Hex(Json.canonical(e.getValue()), 6));
              }
            });
    return fields;
  }

  private static FineTuneJobSpec trainingFields(FineTuneJob job) {
    FineTuneJobSpec training = Json.copy(job.getSpec(), FineTuneJobSpec.class);
    training.suspend = null;
    training.serving = null;
    training.resources = null;
    return training;
  }

  /**
   * Fingerprint of the training pod's resources and placement. When it changes during a run, the
   * Job is replaced within the same run: the new pod gets the new resources and the trainer picks
   * up where the run's checkpoints left it.
   */
  public static String runtimeOf(FineTuneJob job) {
    return Hashes.sha256Hex(
        Json.canonical(Objects.requireNonNullElse(job.getSpec().resources, "")), 6);
  }
}
