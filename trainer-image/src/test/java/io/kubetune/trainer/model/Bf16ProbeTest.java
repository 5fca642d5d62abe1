package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.kubetune.trainer.ChildJvm;
import io.kubetune.trainer.safetensors.Safetensors;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Why DJL 0.36 aborts on bf16, and the route that works: bf16 casts from {@link Bf16Ops} (a
 * TorchScript module written in Java), everything else through DJL's ordinary ops.
 */
class Bf16ProbeTest {
  @TempDir Path dir;

  /** Each call runs in its own JVM, which libtorch's std::terminate kills with SIGABRT. */
  @ParameterizedTest
  @ValueSource(strings = {"toType", "create", "zeros", "zerosLike"})
  void djlCallsThatPassTheBf16DtypeToLibtorchAbortTheJvm(String call) throws Exception {
    Path out = dir.resolve("stdout");
    Path err = dir.resolve("stderr");
    Process process =
        new ProcessBuilder(
                ChildJvm.command(
                    List.of("-XX:-CreateCoredumpOnCrash"), Bf16AbortProbe.class, List.of(call)))
            .directory(dir.toFile())
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .start();
    assertThat(process.waitFor(120, TimeUnit.SECONDS)).isTrue();
    String stdout = Files.readString(out, StandardCharsets.UTF_8);
    String stderr = Files.readString(err, StandardCharsets.UTF_8);

    assertThat(stdout).contains("engine ready").doesNotContain("survived");
    assertThat(stderr).contains("terminate called without an active exception");
    assertThat(process.exitValue()).isEqualTo(134); // 128 + SIGABRT
  }

  @Test
  void castsRoundToNearestEvenAndDjlReadsBf16Back() {
    try (NDManager manager = NDManager.newBaseManager();
        Bf16Ops ops = Bf16Ops.load(manager)) {
      manager.getEngine().setRandomSeed(7);
      NDArray x = manager.randomNormal(0, 3, new Shape(4096), DataType.FLOAT32);
      float[] values = x.toFloatArray();
      NDArray bf16 = ops.toBf16(x);

      float[] expected = new float[values.length];
      for (int i = 0; i < values.length; i++) {
        expected[i] = Safetensors.bf16ToFloat(Safetensors.floatToBf16(values[i]));
      }
      assertThat(ops.toFloat32(bf16).toFloatArray()).containsExactly(expected);
      // DJL's own toType(FLOAT32) works from bf16 (dtype 0 is mapped), gives the same values...
      assertThat(bf16.toType(DataType.FLOAT32, false).toFloatArray()).containsExactly(expected);
      // ...and DJL cannot name the type it holds.
      assertThat(bf16.getDataType()).isEqualTo(DataType.UNKNOWN);
      assertThat(bf16.getShape()).isEqualTo(new Shape(4096));
    }
  }

  @Test
  void bf16LinearMatchesFp32WithinBf16Rounding() {
    try (NDManager manager = NDManager.newBaseManager();
        Bf16Ops ops = Bf16Ops.load(manager)) {
      manager.getEngine().setRandomSeed(11);
      NDArray x = manager.randomNormal(0, 1, new Shape(2, 32, 512), DataType.FLOAT32);
      NDArray w = manager.randomNormal(0, 0.05f, new Shape(256, 512), DataType.FLOAT32);
      NDArray wBf16 = ops.toBf16(w);

      NDArray fused = ops.linear(x, wBf16);
      NDArray viaDjl = ops.toFloat32(ops.toBf16(x).matMul(wBf16.transpose()));
      // Reference: the same bf16-rounded inputs multiplied in fp32, then the exact fp32 product.
      NDArray roundedInputs = ops.toFloat32(ops.toBf16(x)).matMul(ops.toFloat32(wBf16).transpose());
      NDArray exact = x.matMul(w.transpose());

      assertThat(fused.getShape()).isEqualTo(new Shape(2, 32, 256));
      assertThat(fused.getDataType()).isEqualTo(DataType.FLOAT32);
      assertWithinBf16OutputRounding(fused, roundedInputs);
      assertWithinBf16OutputRounding(viaDjl, roundedInputs);
      assertThat(relativeError(fused, exact)).isLessThan(1e-2);
    }
  }

  @Test
  void autogradFlowsThroughBf16BaseToFp32LoraAndInputs() {
    try (NDManager manager = NDManager.newBaseManager();
        Bf16Ops ops = Bf16Ops.load(manager)) {
      manager.getEngine().setRandomSeed(13);
      NDArray x = manager.randomNormal(0, 1, new Shape(16, 64), DataType.FLOAT32);
      NDArray w = ops.toBf16(manager.randomNormal(0, 0.1f, new Shape(32, 64), DataType.FLOAT32));
      NDArray a = manager.randomNormal(0, 0.1f, new Shape(4, 64), DataType.FLOAT32);
      NDArray b = manager.randomNormal(0, 0.1f, new Shape(32, 4), DataType.FLOAT32);
      NDArray g = manager.randomNormal(0, 1, new Shape(16, 32), DataType.FLOAT32);
      for (NDArray p : List.of(x, a, b)) {
        p.setRequiresGradient(true);
      }

      Gradients viaBf16Ops = gradients(x, a, b, g, () -> ops.linear(x, w));
      // Base product left in bf16: adding the fp32 LoRA branch promotes to fp32, differentiably.
      Gradients viaPromotion = gradients(x, a, b, g, () -> ops.toBf16(x).matMul(w.transpose()));
      // The same forward with DJL's toType for the cast back: torchTo runs under NoGradGuard.
      Gradients viaDjlToType =
          gradients(
              x,
              a,
              b,
              g,
              () -> ops.toBf16(x).matMul(w.transpose()).toType(DataType.FLOAT32, false));

      // Analytic gradients in fp32 with the bf16 weight's exact values.
      NDArray wf = ops.toFloat32(w);
      NDArray gB = g.matMul(b);
      NDArray dA = gB.transpose().matMul(x);
      NDArray dB = g.transpose().matMul(x.matMul(a.transpose()));
      NDArray dxLora = gB.matMul(a);
      NDArray dx = g.matMul(wf).add(dxLora);

      assertThat(relativeError(viaBf16Ops.a, dA)).isLessThan(1e-5);
      assertThat(relativeError(viaBf16Ops.b, dB)).isLessThan(1e-5);
      assertThat(relativeError(viaBf16Ops.x, dx)).isLessThan(1e-2);
      assertThat(relativeError(viaPromotion.a, dA)).isLessThan(1e-5);
      assertThat(relativeError(viaPromotion.x, dx)).isLessThan(1e-2);
      assertThat(JniUtils.requiresGrad((PtNDArray) w)).isFalse();
      assertThat(w.hasGradient()).isFalse();
      // DJL's toType drops the base path's gradient: x gets only the LoRA part.
      assertThat(relativeError(viaDjlToType.x, dxLora)).isLessThan(1e-5);
      assertThat(relativeError(viaDjlToType.x, dx)).isGreaterThan(0.5);
    }
  }

  private record Gradients(NDArray x, NDArray a, NDArray b) {}

  /** Gradients of sum(g * (base(x) + x A^T B^T)) for x, A, B. */
  private static Gradients gradients(
      NDArray x, NDArray a, NDArray b, NDArray g, Supplier<NDArray> base) {
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      NDArray y = base.get().add(x.matMul(a.transpose()).matMul(b.transpose()));
      collector.backward(y.mul(g).sum());
    }
    Gradients gradients =
        new Gradients(
            x.getGradient().duplicate(), a.getGradient().duplicate(), b.getGradient().duplicate());
    for (NDArray p : List.of(x, a, b)) {
      p.getGradient().subi(p.getGradient()); // gradients accumulate until zeroed
    }
    return gradients;
  }

  /**
   * GEMM rates through DJL on 2 threads, fp32 against bf16 (a benchmark print; only correctness is
   * asserted). 2048² where a bf16 GEMM is fast; on a CPU without native bf16 (AVX2 only) libtorch
   * falls back to a slow kernel, and the size shrinks so the test stays short.
   */
  @Test
  void gemmRatesFp32AgainstBf16() throws Exception {
    Engine.getEngine("PyTorch"); // loads the native library JniUtils calls into
    int threads = JniUtils.getNumThreads();
    JniUtils.setNumThreads(2);
    try (NDManager manager = NDManager.newBaseManager();
        Bf16Ops ops = Bf16Ops.load(manager)) {
      manager.getEngine().setRandomSeed(17);
      int n = 2048;
      NDArray a = manager.randomNormal(0, 1, new Shape(n, n), DataType.FLOAT32);
      NDArray b = manager.randomNormal(0, 1, new Shape(n, n), DataType.FLOAT32);
      double fp32 = gflops(n, () -> a.matMul(b));

      int m = bf16Size(ops, manager);
      NDArray am = ops.toBf16(manager.randomNormal(0, 1, new Shape(m, m), DataType.FLOAT32));
      NDArray bm = ops.toBf16(manager.randomNormal(0, 1, new Shape(m, m), DataType.FLOAT32));
      NDArray af = ops.toFloat32(am);
      NDArray bf = ops.toFloat32(bm);
      double fp32AtM = gflops(m, () -> af.matMul(bf));
      double bf16MatMul = gflops(m, () -> am.matMul(bm));
      double bf16Linear = gflops(m, () -> am.getNDArrayInternal().linear(am, bm, null).head());
      double mixedLinear = gflops(m, () -> ops.linear(af, bm));
      assertThat(relativeError(ops.toFloat32(am.matMul(bm)), af.matMul(bf))).isLessThan(1e-2);
      assertThat(relativeError(ops.linear(af, bm), af.matMul(bf.transpose()))).isLessThan(1e-2);

      NDArray tiny = manager.randomNormal(0, 1, new Shape(8, 8), DataType.FLOAT32);
      double djlOpMicros = secondsPerCall(() -> tiny.add(tiny)) * 1e6;
      double castMicros = secondsPerCall(() -> ops.toBf16(tiny)) * 1e6;
      System.out.printf(
          Locale.ROOT,
          "bf16 probe through DJL 0.36 / libtorch 2.7.1 on 2 threads (cpu flags: %s; load %s):%n"
              + "  %dx%d: fp32 matMul %.1f GFLOP/s%n"
              + "  %dx%d: fp32 matMul %.1f, bf16 matMul %.1f, bf16 linear (x w^T) %.1f,"
              + " Bf16Ops.linear (fp32 x, bf16 w) %.1f GFLOP/s%n"
              + "  per call: DJL add %.1f us, Bf16Ops cast %.1f us%n",
          bf16CpuFlags(),
          Files.readString(Path.of("/proc/loadavg")).trim(),
          n,
          n,
          fp32,
          m,
          m,
          fp32AtM,
          bf16MatMul,
          bf16Linear,
          mixedLinear,
          djlOpMicros,
          castMicros);
    } finally {
      JniUtils.setNumThreads(threads);
    }
  }

  /** The largest of 2048, 1024, 512, 256 whose bf16 GEMM should take at most ~0.2 s. */
  private static int bf16Size(Bf16Ops ops, NDManager manager) {
    int n = 256;
    NDArray a = ops.toBf16(manager.randomNormal(0, 1, new Shape(n, n), DataType.FLOAT32));
    a.matMul(a).close();
    long start = System.nanoTime();
    a.matMul(a).close();
    double seconds = (System.nanoTime() - start) / 1e9;
    while (n < 2048 && seconds * 8 <= 0.2) {
      n *= 2;
      seconds *= 8;
    }
    return n;
  }

  /** The CPU's native bf16 features as /proc/cpuinfo lists them (empty: none). */
  private static String bf16CpuFlags() throws Exception {
    List<String> found =
        Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
            .filter(line -> line.startsWith("flags"))
            .findFirst()
            .map(line -> List.of(line.substring(line.indexOf(':') + 1).trim().split(" ")))
            .orElse(List.of())
            .stream()
            .filter(f -> f.contains("bf16") || f.startsWith("avx512f") || f.startsWith("amx"))
            .toList();
    return found.isEmpty() ? "no avx512/amx/bf16" : String.join(" ", found);
  }

  private static double gflops(int n, Supplier<NDArray> call) {
    return 2.0 * n * n * n / secondsPerCall(call) / 1e9;
  }

  /** Mean seconds per call after one warm-up call, over about half a second. */
  private static double secondsPerCall(Supplier<NDArray> call) {
    call.get().close();
    int calls = 0;
    long start = System.nanoTime();
    long elapsed;
    do {
      call.get().close();
      calls++;
      elapsed = System.nanoTime() - start;
    } while (elapsed < 500_000_000L && calls < 100_000);
    return elapsed / 1e9 / calls;
  }

  /** |actual - expected| within one bf16 rounding of the output (2^-8 relative) plus fp32 noise. */
  private static void assertWithinBf16OutputRounding(NDArray actual, NDArray expected) {
    float[] got = actual.toFloatArray();
    float[] want = expected.toFloatArray();
    assertThat(got).hasSameSizeAs(want);
    for (int i = 0; i < got.length; i++) {
      assertThat(Math.abs(got[i] - want[i]))
          .as("element %d: %f vs %f", i, got[i], want[i])
          .isLessThanOrEqualTo(Math.abs(want[i]) / 256 + 1e-4f);
    }
  }

  private static double relativeError(NDArray actual, NDArray expected) {
    double diff = actual.sub(expected).square().sum().getFloat();
    double norm = expected.square().sum().getFloat();
    return Math.sqrt(diff / norm);
  }
}
