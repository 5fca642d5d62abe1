package io.kubetune.api;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A storage URI of a FineTuneJob ({@code s3://bucket/key...} or {@code pvc://claim/path...}),
 * parsed strictly once: the CRD pattern, the operator's validator, the builders and local mode use
 * this type. The trainer checks the same syntax with {@link #checkSyntax}.
 *
 * @param scheme {@code s3} or {@code pvc}
 * @param authority the bucket or the claim name
 * @param path the raw (still percent-encoded) path after the authority, without its leading slash
 */
public record StorageUri(String scheme, String authority, String path) {

  /**
   * The CRD pattern: {@code s3://bucket} (S3 naming rules) or {@code pvc://claim} (DNS-1123), then
   * a path of printable characters where {@code %} only starts a two-digit hex escape.
   */
  public static final String PATTERN =
      "^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]|pvc://[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?)"
          + "(/([^\\s%\\x00-\\x1f\\x7f]|%[0-9A-Fa-f]{2})*)?$";

  public static final String HINT =
      "use s3://<bucket>/<prefix> or pvc://<claim-name>/<path> (lower-case bucket/claim names)";

  /**
   * The CRD pattern of {@code storage.endpoint}: http(s), a host without user info, an optional
   * path. Credentials belong in {@code storage.credentialsSecret}.
   */
  public static final String ENDPOINT_PATTERN = "^https?://[^\\s/@]+(/[^\\s]*)?$";

  private static final Pattern STRUCTURE = Pattern.compile(PATTERN);
  private static final Pattern ENDPOINT = Pattern.compile(ENDPOINT_PATTERN);

  /**
   * Parses a URI that passed {@link #parse(String, String)} already (builders after validation).
   *
   * @throws InvalidFieldException when it is not a storage URI at all
   */
  public static StorageUri parse(String uri) {
    return parse("uri", uri);
  }

  /**
   * Parses {@code uri} of {@code field} strictly: a control character, a {@code %} that is not a
   * valid escape, a path that does not decode as UTF-8, {@code .}/{@code ..} or empty segments are
   * refused with the field named and the fix.
   */
  public static StorageUri parse(String field, String uri) {
    if (uri == null || uri.isEmpty()) {
      throw new InvalidFieldException(field, "is empty", HINT);
    }
    checkSyntax(field, uri);
    if (!STRUCTURE.matcher(uri).matches()) {
      throw new InvalidFieldException(field, "'" + uri + "' is not a valid URI", HINT);
    }
    int sep = uri.indexOf("://");
    String scheme = uri.substring(0, sep);
    String rest = uri.substring(sep + 3);
    int slash = rest.indexOf('/');
    String authority = slash < 0 ? rest : rest.substring(0, slash);
    String path = slash < 0 ? "" : rest.substring(slash + 1);
    String decoded = decode(field, uri, path);
    for (String segment : decoded.split("/", -1)) {
      if (segment.equals("..") || segment.equals(".")) {
        throw new InvalidFieldException(
            field,
            "'" + uri + "' contains a '" + segment + "' path segment",
            "use a plain path without . or .. segments");
      }
    }
    if (decoded.contains("//")) {
      throw new InvalidFieldException(
          field, "'" + uri + "' contains an empty path segment (//)", "remove the double slash");
    }
    return new StorageUri(scheme, authority, path);
  }

  /**
   * The checks every storage URI passes, whatever its scheme (the trainer's {@code file://} too):
   * no control character, and {@code %} only as a two-hex-digit escape.
   */
  public static void checkSyntax(String field, String uri) {
    for (int i = 0; i < uri.length(); i++) {
      char c = uri.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        throw new InvalidFieldException(
            field,
            "'" + printable(uri) + "' contains the control character " + codePoint(c),
            "remove it");
      }
      if (c == '%'
          && !(i + 2 < uri.length() && isHex(uri.charAt(i + 1)) && isHex(uri.charAt(i + 2)))) {
        throw new InvalidFieldException(
            field,
            "'" + uri + "' contains a '%' that is not a valid escape (%XX)",
            "write a literal % as %25");
      }
    }
  }

  /**
   * Checks {@code storage.endpoint}: http(s), no user info (credentials are never taken from, nor
   * echoed back from, an endpoint). Messages show the endpoint with any user info redacted.
   */
  public static void checkEndpoint(String field, String endpoint) {
    if (endpoint == null) {
      return;
    }
    checkSyntax(field, redactUserInfo(endpoint));
    int sep = endpoint.indexOf("://");
    String authority = sep < 0 ? "" : endpoint.substring(sep + 3).split("/", 2)[0];
    if (authority.contains("@")) {
      throw new InvalidFieldException(
          field,
          "'" + redactUserInfo(endpoint) + "' contains user info (credentials)",
          "remove them from the URL and put AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the"
              + " Secret named by storage.credentialsSecret");
    }
    if (!ENDPOINT.matcher(endpoint).matches()) {
      throw new InvalidFieldException(
          field, "'" + endpoint + "' is not an http(s) URL", "use e.g. http://minio.storage:9000");
    }
  }

  /**
   * {@code endpoint} with anything before an {@code @} in its authority replaced by {@code ***}.
   */
  public static String redactUserInfo(String endpoint) {
    int sep = endpoint.indexOf("://");
    int start = sep < 0 ? 0 : sep + 3;
    int end = endpoint.indexOf('/', start);
    String authority = end < 0 ? endpoint.substring(start) : endpoint.substring(start, end);
    int at = authority.lastIndexOf('@');
    if (at < 0) {
      return endpoint;
    }
    return endpoint.substring(0, start)
        + "***"
        + authority.substring(at)
        + (end < 0 ? "" : endpoint.substring(end));
  }

  public boolean isPvc() {
    return "pvc".equals(scheme);
  }

  public Optional<String> claimName() {
    return isPvc() ? Optional.of(authority) : Optional.empty();
  }

  /** The URI the trainer uses: s3:// unchanged, pvc:// rewritten to the mounted claim. */
  public String inPod() {
    if (isPvc()) {
      return "file://"
          + TrainerLayout.PVC_MOUNT_ROOT
          + "/"
          + authority
          + (path.isEmpty() ? "" : "/" + path);
    }
    return toString();
  }

  /** This location as a folder: "/" appended to the path when missing. */
  public StorageUri asFolder() {
    return path.isEmpty() || path.endsWith("/")
        ? this
        : new StorageUri(scheme, authority, path + "/");
  }

  /**
   * A training run's export below this (checkpoints) location: {@code
   * <this>/final/<trainingRevision>/} ({@link TrainerLayout#exportFolder(String)}).
   */
  public StorageUri finalOutput(String trainingRevision) {
    StorageUri folder = asFolder();
    return new StorageUri(
        scheme, authority, folder.path + TrainerLayout.exportFolder(trainingRevision));
  }

  /** Same location with "/" appended when missing: prefixes are folders. */
  public static String asFolder(String uri) {
    return uri.endsWith("/") ? uri : uri + "/";
  }

  @Override
  public String toString() {
    return scheme + "://" + authority + (path.isEmpty() ? "" : "/" + path);
  }

  private static String decode(String field, String uri, String path) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int i = 0; i < path.length(); i++) {
      char c = path.charAt(i);
      if (c == '%') {
        bytes.write(Integer.parseInt(path.substring(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
      }
    }
    try {
      String decoded =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(bytes.toByteArray()))
              .toString();
      for (int i = 0; i < decoded.length(); i++) {
        char c = decoded.charAt(i);
        if (c < 0x20 || c == 0x7f) {
          throw new InvalidFieldException(
              field, "'" + uri + "' encodes the control character " + codePoint(c), "remove it");
        }
      }
      return decoded;
    } catch (CharacterCodingException e) {
      throw new InvalidFieldException(
          field,
          "'" + uri + "' has %-escapes that are not UTF-8",
          "escape each byte of the UTF-8 encoding, e.g. %C3%A9 for é");
    }
  }

  private static boolean isHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  private static String codePoint(char c) {
    return String.format("U+%04X", (int) c);
  }

  private static String printable(String s) {
    StringBuilder b = new StringBuilder();
    for (char c : s.toCharArray()) {
      b.append(c < 0x20 || c == 0x7f ? String.format("\\u%04x", (int) c) : String.valueOf(c));
    }
    return b.toString();
  }
}
