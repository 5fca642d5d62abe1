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
    if (value == null) {
      return null;
    }
    List<String> paths = new ArrayList<>(mounts.keySet());
    paths.sort(Comparator.comparingInt(String::length).reversed());
    StringBuilder out = new StringBuilder();
    int i = 0;
    while (i < value.length()) {
      String matched = null;
      if (i == 0 || "/\"'= \n".indexOf(value.charAt(i - 1)) >= 0) {
        for (String mountPath : paths) {
          int end = i + mountPath.length();
          if (value.startsWith(mountPath, i)
              && (end == value.length() || "/\"' \n".indexOf(value.charAt(end)) >= 0)) {
            matched = mountPath;
            break;
          }
        }
      }
      if (matched != null) {
        out.append(mounts.get(matched));
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
