package io.kubetune.trainer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the numpy reference scripts of src/test/resources with the test bed's python ({@link
 * Testbed}), so the independent checks run everywhere the tests run instead of being skipped.
 */
public final class Python {
  private Python() {}

  public record Result(int exitCode, String stdout, String stderr) {}

  public static Result run(String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Testbed.python().toString());
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
