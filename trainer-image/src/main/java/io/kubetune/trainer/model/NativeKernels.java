package io.kubetune.trainer.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * KubeTune's own libtorch operators ({@code src/main/native/kubetune_kernels.cpp}, registered as
 * {@code torch.ops.kubetune.*}), loaded once into the process.
 *
 * <p>The build puts the library into the jar for linux-x86_64 only. It links against libtorch by
 * name, so it is loaded after DJL's engine has loaded libtorch, from a copy in DJL's cache
 * directory (named by the library's hash, so builds do not overwrite each other's copy). Where the
 * jar has no library for the platform, the kernels that use it fall back to libtorch's ops and
 * {@link #status} says why; a library that is there but fails to load is an error, not a fallback.
 */
public final class NativeKernels {
  private static final String RESOURCE = "/native/linux-x86_64/libkubetune_kernels.so";

  private static Status status;

  /**
   * @param loaded whether the operators are registered in this process
   * @param vectorized whether they run their AVX2 + FMA kernels on this CPU; if not, they run the
   *     same formulas with libtorch's ops inside (false when not loaded)
   * @param detail where the library was loaded from, or why it was not
   */
  public record Status(boolean loaded, boolean vectorized, String detail) {}

  private NativeKernels() {}

  /** Loads the library on the first call; whether it is loaded, and from where or why not. */
  public static synchronized Status status() {
    if (status == null) {
      status = load();
    }
    return status;
  }

  private static Status load() {
    String platform = System.getProperty("os.name") + "-" + System.getProperty("os.arch");
    if (!platform.equals("Linux-amd64")) {
      return new Status(false, false, "not built for " + platform + " (linux-x86_64 only)");
    }
    byte[] library;
    try (InputStream in = NativeKernels.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        return new Status(false, false, "not in this build (no " + RESOURCE + " on the classpath)");
      }
      library = in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + RESOURCE, e);
    }
    // libtorch first: the library's references to it resolve against the loaded copy.
    Engine.getEngine("PyTorch");
    Path file = cacheDirectory().resolve("kubetune-kernels-" + sha256(library) + ".so");
    try {
      if (!Files.exists(file)) {
        Files.createDirectories(file.getParent());
        Path partial = Files.createTempFile(file.getParent(), "kubetune-kernels", ".tmp");
        Files.write(partial, library);
        Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("writing the native kernels to " + file, e);
    }
    try {
      System.load(file.toString());
    } catch (UnsatisfiedLinkError e) {
      throw new IllegalStateException(
          "the native kernels in " + file + " do not load into this libtorch: " + e.getMessage(),
          e);
    }
    return new Status(true, vectorized(), file.toString());
  }

  /**
   * Returns the memory the process's heap holds free to the operating system (glibc's {@code
   * malloc_trim}), so that memory freed by earlier work stops counting in the resident set: the
   * benchmark calls it before each run, whose peak RSS is then its own, as in a fresh process.
   * Whether the library is loaded to do it (false: nothing was done).
   */
  public static boolean releaseFreeMemory() {
    if (!status().loaded()) {
      return false;
    }
    callBoolean("release_free_memory()");
    return true;
  }

  /**
   * For tests: with false the operators run the fallbacks that a CPU without AVX2 and FMA runs (so
   * those are tested where the CPU has them); true restores the vectorized kernels where the CPU
   * has them. Returns whether they are used now. Not to be called while operators run.
   */
  public static boolean useVectorizedKernels(boolean on) {
    if (!status().loaded()) {
      throw new IllegalStateException("the native kernels are not loaded: " + status().detail());
    }
    return callBoolean("use_vectorized_kernels(" + (on ? "True" : "False") + ")");
  }

  /** Asks the loaded library whether this CPU runs its vectorized kernels. */
  private static boolean vectorized() {
    return callBoolean("vectorized_kernels()");
  }

  /** Calls one of the library's {@code kubetune::<op>(...) -> bool} through TorchScript. */
  private static boolean callBoolean(String call) {
    try (NDManager manager = NDManager.newBaseManager(Device.cpu());
        ScriptedModule probe =
            ScriptedModule.compile(
                manager,
                "NativeKernelsCall",
                """
                  def forward(self: __torch__.NativeKernelsCall,
                    x: Tensor) -> Tensor:
                    return torch.mul(x, float(ops.kubetune.%s))
                """
                    .formatted(call))) {
      return probe.call(null, manager.create(1f)).getFloat() == 1f;
    }
  }

  /** DJL's cache directory (where it extracts libtorch), else the temporary directory. */
  private static Path cacheDirectory() {
    String dir = System.getProperty("DJL_CACHE_DIR", System.getenv("DJL_CACHE_DIR"));
    return Path.of(dir != null ? dir : System.getProperty("java.io.tmpdir"));
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes), 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
