package io.kubetune.trainer.storage;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * Key rules. A key is relative to a store's root prefix and must not be able to name anything
 * outside it, on S3 (where {@code ..} is just characters, but proxies and file-backed servers may
 * normalise it) and on a file system alike. Checked before any request is made.
 */
public final class Keys {
  /** S3's limit is 1024 bytes for the full key; leave room for the prefix. */
  static final int MAX_KEY_BYTES = 900;

  private static final String RULES =
      "Use a relative key made of '/'-separated names, e.g. \"step-100/manifest.json\": no leading"
          + " '/', no '.' or '..' segments, no empty segments ('//'), no backslashes, no"
          + " percent-encoded '.', '/', '\\' or '%', no control characters";

  private Keys() {}

  /**
   * Validates an object key relative to {@code root}.
   *
   * @throws InvalidKeyException naming the key, the reason and the fix
   */
  public static String checkKey(String key, String root) {
    check(key, root, false);
    return key;
  }

  /**
   * Validates a listing prefix: like a key, but may be empty (the whole root) and may end with
   * {@code /}.
   */
  public static String checkPrefix(String prefix, String root) {
    if (prefix == null || prefix.isEmpty()) {
      return "";
    }
    check(prefix, root, true);
    return prefix;
  }

  private static void check(String key, String root, boolean prefix) {
    if (key == null || key.isEmpty()) {
      throw invalid(String.valueOf(key), root, "the key is empty");
    }
    if (key.getBytes(StandardCharsets.UTF_8).length > MAX_KEY_BYTES) {
      throw invalid(key, root, "the key is longer than " + MAX_KEY_BYTES + " bytes");
    }
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        throw invalid(key, root, "it contains a control character at index " + i);
      }
      if (c == '\\') {
        throw invalid(key, root, "it contains a backslash (a path separator on some systems)");
      }
      if (c == '%' && isHex(key, i + 1) && isHex(key, i + 2)) {
        int decoded = Integer.parseInt(key.substring(i + 1, i + 3), 16);
        if (decoded == '.' || decoded == '/' || decoded == '\\' || decoded == '%') {
          throw invalid(
              key,
              root,
              "it contains the percent-encoded '"
                  + (char) decoded
                  + "' ("
                  + key.substring(i, i + 3).toLowerCase(Locale.ROOT)
                  + "), which a server or proxy may decode into a traversal");
        }
      }
    }
    if (key.startsWith("/")) {
      throw invalid(key, root, "it is absolute (starts with '/')");
    }
    if (key.length() > 1 && key.charAt(1) == ':' && Character.isLetter(key.charAt(0))) {
      throw invalid(key, root, "it starts with a drive letter");
    }
    String body = prefix && key.endsWith("/") ? key.substring(0, key.length() - 1) : key;
    String[] segments = body.split("/", -1);
    for (String segment : segments) {
      if (segment.isEmpty()) {
        throw invalid(key, root, "it has an empty segment ('//' or a trailing '/')");
      }
      if (segment.equals("..")) {
        throw invalid(key, root, "it has a '..' segment, which would escape the prefix");
      }
      if (segment.equals(".")) {
        throw invalid(key, root, "it has a '.' segment");
      }
    }
  }

  private static boolean isHex(String s, int i) {
    return i < s.length() && Character.digit(s.charAt(i), 16) >= 0;
  }

  private static InvalidKeyException invalid(String key, String root, String reason) {
    return new InvalidKeyException(
        "Invalid object key \""
            + printable(key)
            + "\" under "
            + root
            + ": "
            + reason
            + ". "
            + RULES
            + ".");
  }

  private static String printable(String key) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < key.length() && i < 200; i++) {
      char c = key.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    if (key.length() > 200) {
      out.append("...");
    }
    return out.toString();
  }
}
