package io.kubetune.local;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Maps container paths (volume mount points) to local folders. A local process cannot see
 * /etc/kubetune or /var/run/kubetune/pvc/..., so the pod runner rewrites every mount path that
 * appears in the container's arguments, environment and projected ConfigMap files. Longest mount
 * path first, so nested mounts win.
 */
final class PathTranslation {
  private final Map<String, Path> mounts = new LinkedHashMap<>();

  void add(String mountPath, Path local) {
    mounts.put(stripSlash(mountPath), local.toAbsolutePath().normalize());
  }

  /**
   * Rewrites mount paths in one left-to-right pass, so a translated local path is never translated
   * again (the local state folder may itself live under a mount path such as /tmp). A mount path
   * matches only as a whole path: preceded by the start, '/', a quote, '=' or a blank, and followed
   * by the end, '/', a quote or a blank.
   */
  String apply(String value) {
    Map<String, String> toLocal = new LinkedHashMap<>();
    mounts.forEach((mountPath, local) -> toLocal.put(mountPath, local.toString()));
    return replace(value, toLocal);
  }

  /**
   * The other way, for what a process prints: local folders back to the mount paths the container
   * would have printed, so the operator reads the same log from a local process as from a pod.
   */
  String reverse(String value) {
    Map<String, String> toMount = new LinkedHashMap<>();
    mounts.forEach((mountPath, local) -> toMount.putIfAbsent(local.toString(), mountPath));
    return replace(value, toMount);
  }

  private static String replace(String value, Map<String, String> replacements) {
    if (value == null) {
      return null;
    }
    List<String> paths = new ArrayList<>(replacements.keySet());
    paths.sort(Comparator.comparingInt(String::length).reversed());
    StringBuilder out = new StringBuilder();
    int i = 0;
    while (i < value.length()) {
      String matched = null;
      if (i == 0 || "/\"'= \n".indexOf(value.charAt(i - 1)) >= 0) {
        for (String path : paths) {
          int end = i + path.length();
          if (value.startsWith(path, i)
              && (end == value.length() || "/\"' \n".indexOf(value.charAt(end)) >= 0)) {
            matched = path;
            break;
          }
        }
      }
      if (matched != null) {
        out.append(replacements.get(matched));
        i += matched.length();
      } else {
        out.append(value.charAt(i));
        i++;
      }
    }
    return out.toString();
  }

  private static String stripSlash(String path) {
    return path.length() > 1 && path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
  }
}
