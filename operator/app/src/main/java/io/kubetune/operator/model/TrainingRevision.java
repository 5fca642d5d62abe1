package io.kubetune.operator.model;

import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobSpec;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Fingerprint of everything that shapes a training run: the spec without {@code suspend} and {@code
 * serving} (which never restart training), plus {@code restartNonce}. A different fingerprint means
 * a new run and a new Job.
 */
public final class TrainingRevision {
  private TrainingRevision() {}

  public static String of(FineTuneJob job) {
    FineTuneJobSpec training = Json.copy(job.getSpec(), FineTuneJobSpec.class);
    training.suspend = null;
    training.serving = null;
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-256")
              .digest(Json.canonical(training).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest, 0, 6);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is always available", e);
    }
  }
}
