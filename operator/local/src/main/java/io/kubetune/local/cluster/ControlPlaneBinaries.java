package io.kubetune.local.cluster;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Finds the control plane's binaries: {@code KUBETUNE_CONTROLPLANE_BIN} if set, else the folder
 * that {@code operator/local/controlplane/build.sh} prints (it builds them on first use, which
 * takes many minutes, and is a no-op once the pinned versions are cached).
 */
public final class ControlPlaneBinaries {
  public static final String ENV = "KUBETUNE_CONTROLPLANE_BIN";

  private ControlPlaneBinaries() {}

  public static Path locate(Path repoRoot) throws IOException, InterruptedException {
    String configured = System.getenv(ENV);
    if (configured != null && !configured.isBlank()) {
      return Path.of(configured);
    }
    Path script = repoRoot.resolve("operator/local/controlplane/build.sh");
    if (!Files.isRegularFile(script)) {
      throw new IllegalStateException(
          script + " is missing; set " + ENV + " to a folder with the binaries");
    }
    Process p =
        new ProcessBuilder(List.of("bash", script.toString()))
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    int code = p.waitFor();
    if (code != 0 || out.isEmpty()) {
      throw new IOException(script + " failed with exit code " + code + " (see its output above)");
    }
    String[] lines = out.split("\n");
    return Path.of(lines[lines.length - 1].strip());
  }
}
