package io.kubetune.trainer.checkpoint;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The {@code manifest.json} of a checkpoint, written last: a checkpoint exists only if its manifest
 * does and every file it lists is present with the listed size and SHA-256. Files live under {@code
 * step-<N>/<attempt>/<name>}, so a losing concurrent commit of the same step never touches the
 * winner's objects.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(
    int formatVersion,
    long step,
    String time,
    String trainingRevision,
    String attempt,
    Map<String, Double> metrics,
    List<FileEntry> files) {

  public static final int FORMAT_VERSION = 1;

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
          .configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true)
          .configure(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES, true);

  /** One file: its name relative to the checkpoint, size in bytes and lower-case hex SHA-256. */
  public record FileEntry(String name, long size, String sha256) {}

  public Manifest {
    metrics = metrics == null ? Map.of() : new TreeMap<>(metrics);
    files = files == null ? List.of() : List.copyOf(files);
  }

  byte[] toJson() throws IOException {
    return JSON.writeValueAsBytes(this);
  }

  /**
   * Parses and checks a manifest.
   *
   * @throws IOException with the reason if it does not parse or is incomplete
   */
  static Manifest parse(byte[] json) throws IOException {
    Manifest m;
    try {
      m = JSON.readValue(json, Manifest.class);
    } catch (IOException e) {
      throw new IOException("manifest does not parse: " + firstLine(e.getMessage()));
    }
    if (m == null) {
      throw new IOException("manifest is empty");
    }
    if (m.formatVersion() != FORMAT_VERSION) {
      throw new IOException(
          "unsupported manifest formatVersion "
              + m.formatVersion()
              + " (this trainer reads "
              + FORMAT_VERSION
              + ")");
    }
    if (m.trainingRevision() == null || m.time() == null || m.attempt() == null) {
      throw new IOException("manifest lacks trainingRevision, time or attempt");
    }
    for (FileEntry f : m.files()) {
      if (f == null || f.name() == null || f.sha256() == null || f.size() < 0) {
        throw new IOException("manifest has an incomplete file entry: " + f);
      }
    }
    return m;
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
