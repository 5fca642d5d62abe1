package io.kubetune.trainer.storage;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A folder-like storage location: {@code s3://bucket/prefix/} or {@code file:///absolute/path/}.
 * Keys given to an {@link ObjectStore} are relative to it.
 *
 * @param scheme {@code s3} or {@code file}
 * @param bucket the S3 bucket; null for {@code file}
 * @param prefix the S3 key prefix, empty or ending with {@code /}; for {@code file}, the absolute
 *     path ending with {@code /}
 */
public record StorageUri(String scheme, String bucket, String prefix) {
  public static final String S3 = "s3";
  public static final String FILE = "file";

  /** Lenient enough for existing buckets with dots, strict enough to refuse anything else. */
  private static final Pattern BUCKET = Pattern.compile("[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]");

  public StorageUri {
    Objects.requireNonNull(scheme, "scheme");
    Objects.requireNonNull(prefix, "prefix");
  }

  /**
   * Parses {@code s3://bucket[/prefix...]} or {@code file:///path}. The prefix is treated as a
   * folder: a trailing {@code /} is added when missing.
   *
   * @throws IllegalArgumentException with the accepted forms when the URI is not one of them
   */
  public static StorageUri parse(String uri) {
    if (uri == null || uri.isBlank()) {
      throw new IllegalArgumentException(
          "Storage URI is empty. Use s3://bucket/prefix/ or file:///absolute/path/");
    }
    // No control characters, '%' only as a valid escape: the rules the operator checks too.
    io.kubetune.api.StorageUri.checkSyntax("storage URI", uri);
    int colon = uri.indexOf("://");
    String scheme = colon > 0 ? uri.substring(0, colon).toLowerCase(Locale.ROOT) : "";
    if (scheme.isEmpty() && uri.regionMatches(true, 0, "file:/", 0, 6)) {
      scheme = FILE; // file:/path, as java.io.File#toURI writes it
    }
    switch (scheme) {
      case S3 -> {
        String rest = uri.substring(colon + 3);
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String path = slash < 0 ? "" : rest.substring(slash + 1);
        if (!BUCKET.matcher(bucket).matches()) {
          throw new IllegalArgumentException(
              "Invalid S3 bucket \""
                  + bucket
                  + "\" in "
                  + uri
                  + ": bucket names are 3-63 lowercase letters, digits, '.' or '-'");
        }
        if (path.contains("?") || path.contains("#")) {
          throw new IllegalArgumentException(
              "Storage URI " + uri + " has a query or fragment; use s3://bucket/prefix/");
        }
        String prefix = Keys.checkPrefix(folder(path), S3 + "://" + bucket + "/");
        return new StorageUri(S3, bucket, prefix);
      }
      case FILE -> {
        URI parsed;
        try {
          parsed = new URI(uri);
        } catch (URISyntaxException e) {
          throw new IllegalArgumentException(
              "Invalid file URI " + uri + ": " + e.getReason() + ". Use file:///absolute/path/");
        }
        if (parsed.getRawAuthority() != null && !parsed.getRawAuthority().isEmpty()) {
          throw new IllegalArgumentException(
              "File URI "
                  + uri
                  + " names a host; use three slashes: file:///absolute/path/ (local files only)");
        }
        String path = parsed.getPath();
        if (path == null || !path.startsWith("/")) {
          throw new IllegalArgumentException(
              "File URI " + uri + " is not absolute; use file:///absolute/path/");
        }
        if (!path.equals("/")) {
          // The path below "/" obeys the same rules as keys: no '..', no '.', no '//'.
          Keys.checkPrefix(folder(path.substring(1)), "file:///");
        }
        return new StorageUri(FILE, null, folder(path));
      }
      default ->
          throw new IllegalArgumentException(
              "Unsupported storage URI \""
                  + uri
                  + "\": use s3://bucket/prefix/ or file:///absolute/path/");
    }
  }

  private static String folder(String path) {
    return path.isEmpty() || path.endsWith("/") ? path : path + "/";
  }

  public boolean isS3() {
    return S3.equals(scheme);
  }

  public boolean isFile() {
    return FILE.equals(scheme);
  }

  /** The local directory of a {@code file://} URI. */
  public Path path() {
    if (!isFile()) {
      throw new IllegalStateException(this + " is not a file:// URI");
    }
    return Path.of(prefix);
  }

  /**
   * The full S3 key (prefix + key) of a validated relative key.
   *
   * @throws InvalidKeyException when the key would escape the prefix
   */
  public String fullKey(String key) {
    return prefix + Keys.checkKey(key, toString());
  }

  /** The URI of a key below this one, for messages and manifests. */
  public String resolve(String key) {
    return this + Keys.checkKey(key, toString());
  }

  /** This location with {@code relativePrefix} (a validated folder) appended. */
  public StorageUri child(String relativePrefix) {
    String p = Keys.checkPrefix(relativePrefix, toString());
    return new StorageUri(scheme, bucket, prefix + folder(p));
  }

  @Override
  public String toString() {
    return isS3() ? S3 + "://" + bucket + "/" + prefix : FILE + "://" + prefix;
  }
}
