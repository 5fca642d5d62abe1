package io.kubetune.operator.model;

import io.kubetune.operator.Names;
import java.util.Optional;

/** A parsed s3:// or pvc:// URI from a FineTuneJob, and its form inside the trainer pod. */
public record StorageLocation(String scheme, String authority, String path) {

  public static StorageLocation parse(String uri) {
    int sep = uri.indexOf("://");
    if (sep < 0) {
      throw new IllegalArgumentException("not a URI: " + uri);
    }
    String scheme = uri.substring(0, sep);
    String rest = uri.substring(sep + 3);
    int slash = rest.indexOf('/');
    String authority = slash < 0 ? rest : rest.substring(0, slash);
    String path = slash < 0 ? "" : rest.substring(slash + 1);
    return new StorageLocation(scheme, authority, path);
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
      return "file://" + Names.pvcMountPath(authority) + (path.isEmpty() ? "" : "/" + path);
    }
    return scheme + "://" + authority + (path.isEmpty() ? "" : "/" + path);
  }

  /** Same location with "/" appended when missing: prefixes are folders. */
  public static String asFolder(String uri) {
    return uri.endsWith("/") ? uri : uri + "/";
  }
}
