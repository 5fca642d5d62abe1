package io.kubetune.trainer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs python3 scripts from tests; tests are skipped (not failed) where python3 or numpy lack. */
public final class Python {
  private Python() {}

  /** Skips the calling test unless python3 with numpy can be started. */
  public static void assumeNumpy() {
    boolean available;
    try {
      available = run("-c", "import numpy").exitCode == 0;
    } catch (IOException e) {
      available = false;
    }
    assumeTrue(available, "python3 with numpy is not available: skipping the independent check");
  }

  public record Result(int exitCode, String stdout, String stderr) {}

  public static Result run(String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add("python3");
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).start();
    try {
      byte[] out = process.getInputStream().readAllBytes();
      byte[] err = process.getErrorStream().readAllBytes();
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new IOException("python3 timed out");
      }
      return new Result(
          process.exitValue(),
          new String(out, StandardCharsets.UTF_8),
          new String(err, StandardCharsets.UTF_8));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }
}
