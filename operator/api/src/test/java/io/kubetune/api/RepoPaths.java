package io.kubetune.api;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the repository root from a module's test working directory. */
public final class RepoPaths {
  private RepoPaths() {}

  public static Path root() {
    String configured = System.getProperty("kubetune.repoRoot");
    if (configured != null && Files.isDirectory(Path.of(configured, "crds"))) {
      return Path.of(configured);
    }
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isDirectory(dir.resolve("crds"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      throw new IllegalStateException("cannot find the repository root (a folder with crds/)");
    }
    return dir;
  }
}
