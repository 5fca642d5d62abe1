package io.kubetune.trainer.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.train.FineTuner;
import io.kubetune.trainer.train.ProgressReporter;
import io.kubetune.trainer.train.TrainingMethod;
import io.kubetune.trainer.train.TrainingOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Training throughput of the real trainer (LoRA and full) on a ~18M-parameter Llama, next to the
 * fp32 GEMM rate measured in the same process, so the share of the machine's matmul peak that
 * training achieves is visible. Writes JSON to stdout and to {@code --output}.
 */
@Command(
    name = "benchmark",
    description = "Measure LoRA and full fine-tuning tokens/s and GEMM GFLOP/s.")
final class Benchmark implements Callable<Integer> {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  @Option(names = "--work-dir", description = "Scratch directory (default: a temp dir).")
  Path workDir;

  @Option(names = "--output", description = "Also write the JSON result here.")
  Path output;

  @Option(names = "--hidden", defaultValue = "512")
  int hidden;

  @Option(names = "--layers", defaultValue = "6")
  int layers;

  @Option(names = "--heads", defaultValue = "8")
  int heads;

  @Option(names = "--kv-heads", defaultValue = "4")
  int kvHeads;

  @Option(names = "--intermediate", defaultValue = "1408")
  int intermediate;

  @Option(names = "--batch-size", defaultValue = "8")
  int batchSize;

  @Option(names = "--sequence-length", defaultValue = "128", description = "Tokens per example.")
  int sequenceLength;

  @Option(names = "--steps", defaultValue = "12")
  int steps;

  @Option(names = "--warmup-steps", defaultValue = "3", description = "Steps excluded from timing.")
  int warmupSteps;

  @Option(names = "--lora-rank", defaultValue = "8")
  int loraRank;

  @Option(
      names = "--pytorch",
      description = "Python with torch (e.g. /usr/bin/python3) to run the PyTorch eager baseline.")
  String pytorchPython;

  @Option(
      names = "--pytorch-script",
      defaultValue = "trainer-image/benchmark/pytorch_baseline.py",
      description = "The baseline script (default relative to the repository root).")
  Path pytorchScript;

  @Override
  public Integer call() throws IOException {
    Path dir = workDir != null ? workDir : Files.createTempDirectory("kubetune-benchmark");
    Path model = dir.resolve("model");
    TinyLlama.Size size = new TinyLlama.Size(hidden, layers, heads, kvHeads, intermediate);
    LlamaConfig config = TinyLlama.write(model, size, true, 1);
    Path data = writeData(dir.resolve("data.jsonl"));

    ObjectNode result = JSON.createObjectNode();
    result.put("threads", Runtime.getRuntime().availableProcessors());
    ObjectNode modelNode = result.putObject("model");
    modelNode.put("parameters", config.parameterCount());
    modelNode.put("hidden", hidden).put("layers", layers).put("heads", heads);
    modelNode.put("kvHeads", kvHeads).put("intermediate", intermediate);
    modelNode.put("vocab", config.vocabSize());
    result.put("batchSize", batchSize);
    result.put("sequenceLength", sequenceLength);
    // The GEMM peak is sampled before, between and after the runs and the best is used: on a
    // shared machine a single sample can land on a busy moment.
    List<Double> gemmSamples = new ArrayList<>();
    gemmSamples.add(gemmGflops());
    Map<TrainingMethod, double[]> runs = new LinkedHashMap<>();

    for (TrainingMethod method : List.of(TrainingMethod.LORA, TrainingMethod.FULL)) {
      TrainingOptions options =
          TrainingOptions.defaults(model, data, DatasetFormat.COMPLETION, dir.resolve("out"))
              .withMethod(
                  method,
                  loraRank,
                  2.0 * loraRank,
                  List.of(
                      "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                  layers)
              .withSchedule(steps, 1, 1e-4, batchSize, 1, 0)
              .withMaxSequenceLength(Math.max(512, sequenceLength + 16));
      FineTuner.Result run;
      try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
        run = tuner.train();
      }
      double[] start = run.trainLoss().get(warmupSteps - 1);
      double[] end = run.trainLoss().get(run.trainLoss().size() - 1);
      double tokensPerSecond = (end[3] - start[3]) / (end[2] - start[2]);
      double secondsPerStep = (end[2] - start[2]) / (end[0] - start[0]);
      runs.put(method, new double[] {tokensPerSecond, run.trainableParameters(), secondsPerStep});
      gemmSamples.add(gemmGflops());
    }
    double gemm = gemmSamples.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
    result.put("gemmGflops", round(gemm));
    var samples = result.putArray("gemmGflopsSamples");
    gemmSamples.forEach(g -> samples.add(round(g)));
    for (Map.Entry<TrainingMethod, double[]> e : runs.entrySet()) {
      double tokensPerSecond = e.getValue()[0];
      double flopsPerToken = flopsPerToken(config, e.getKey(), sequenceLength);
      double achieved = tokensPerSecond * flopsPerToken / 1e9;
      ObjectNode node = result.putObject(e.getKey().name().toLowerCase());
      node.put("tokensPerSecond", round(tokensPerSecond));
      node.put("trainableParameters", (long) e.getValue()[1]);
      node.put("modelGflopsPerToken", round(flopsPerToken / 1e9));
      node.put("achievedGflops", round(achieved));
      node.put("shareOfGemmPeak", round(achieved / gemm));
      node.put("secondsPerStep", round(e.getValue()[2]));
    }
    result.put(
        "loraSpeedupOverFull",
        round(runs.get(TrainingMethod.LORA)[0] / runs.get(TrainingMethod.FULL)[0]));
    result.put("peakRssMiB", peakRssMiB());
    if (pytorchPython != null) {
      ObjectNode pytorch = runPytorchBaseline();
      result.set("pytorch", pytorch);
      for (String method : List.of("lora", "full")) {
        double ours = result.get(method).get("tokensPerSecond").asDouble();
        double theirs = pytorch.get(method).get("tokensPerSecond").asDouble();
        ((ObjectNode) result.get(method)).put("speedupOverPytorch", round(ours / theirs));
      }
    }
    String text = JSON.writeValueAsString(result);
    TrainerCli.Context.out.println(text);
    if (output != null) {
      Files.writeString(output, text);
    }
    return 0;
  }

  /**
   * Matmul FLOPs per trained token: forward 2N over the linear weights plus attention scores and
   * values (4·seq·hidden per layer, causal half not subtracted, as the usual MFU convention);
   * backward twice the forward for full training, and for LoRA only the input gradients (the frozen
   * weights get none), i.e. one more forward's worth. The adapters themselves are negligible at
   * rank 8 and are ignored.
   */
  static double flopsPerToken(LlamaConfig c, TrainingMethod method, int sequenceLength) {
    double linear = c.parameterCount() - (double) c.vocabSize() * c.hiddenSize();
    linear += (double) c.vocabSize() * c.hiddenSize(); // the head is a matmul, the lookup is not
    double attention =
        4.0 * c.numHiddenLayers() * sequenceLength * c.numAttentionHeads() * c.headDim();
    double forward = 2 * linear + attention;
    return method == TrainingMethod.FULL ? 3 * forward : 2 * forward;
  }

  private Path writeData(Path file) throws IOException {
    Random random = new Random(1);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < batchSize * (steps + 1); i++) {
      StringBuilder text = new StringBuilder();
      // Single bytes outside the merges: one token per character, so the length is exact.
      for (int t = 0; t < sequenceLength - 3; t++) {
        text.append((char) ('0' + random.nextInt(10)));
      }
      lines.add("{\"prompt\": \"q\", \"completion\": \"" + text + "\"}");
    }
    Files.write(file, lines);
    return file;
  }

  /** Runs the same sizes in PyTorch eager with the same intra-op thread count. */
  private ObjectNode runPytorchBaseline() throws IOException {
    List<String> command =
        new ArrayList<>(
            List.of(
                pytorchPython,
                pytorchScript.toString(),
                "--threads",
                String.valueOf(ai.djl.pytorch.jni.JniUtils.getNumThreads()),
                "--hidden",
                String.valueOf(hidden),
                "--layers",
                String.valueOf(layers),
                "--heads",
                String.valueOf(heads),
                "--kv-heads",
                String.valueOf(kvHeads),
                "--intermediate",
                String.valueOf(intermediate),
                "--batch-size",
                String.valueOf(batchSize),
                "--sequence-length",
                String.valueOf(sequenceLength),
                "--steps",
                String.valueOf(steps),
                "--warmup-steps",
                String.valueOf(warmupSteps),
                "--lora-rank",
                String.valueOf(loraRank)));
    Process process = new ProcessBuilder(command).redirectErrorStream(false).start();
    byte[] out = process.getInputStream().readAllBytes();
    byte[] err = process.getErrorStream().readAllBytes();
    try {
      if (process.waitFor() != 0) {
        throw new IOException(
            "PyTorch baseline failed: " + new String(err, java.nio.charset.StandardCharsets.UTF_8));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
    return (ObjectNode) JSON.readTree(out);
  }

  /** Best of a few timed 1024x1024 fp32 matmuls (2n^3 FLOPs each). */
  static double gemmGflops() {
    int n = 1024;
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray a = manager.randomNormal(new Shape(n, n));
      NDArray b = manager.randomNormal(new Shape(n, n));
      double best = 0;
      for (int round = 0; round < 6; round++) {
        int repeats = 8;
        long start = System.nanoTime();
        for (int i = 0; i < repeats; i++) {
          try (NDArray c = a.matMul(b)) {
            c.getFloat(0, 0);
          }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        best = Math.max(best, repeats * 2.0 * n * n * n / seconds / 1e9);
      }
      return best;
    }
  }

  static long peakRssMiB() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
        }
      }
    } catch (IOException | NumberFormatException ignored) {
      // not Linux
    }
    return -1;
  }

  private static double round(double v) {
    return Math.round(v * 1000) / 1000.0;
  }
}
