package io.kubetune.trainer.cli;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.Bounds;
import io.kubetune.api.v1alpha1.HyperparametersSpec.Precision;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.Bf16Ops;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.NativeKernels;
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
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Training throughput and peak memory of the real trainer (LoRA and full) on a generated ~18M Llama
 * or any Hugging Face folder ({@code --model}), next to the fp32 GEMM rate measured in the same
 * process. With {@code --peer-python} the same configuration (model, batch, LoRA on the same
 * modules, AdamW, clipping) also runs through transformers + PEFT
 * (src/test/python/peft_benchmark.py, one process per method and setting), and the JSON holds both
 * sides, the ratios and issue 10's targets. With {@code --rounds N} the whole measurement repeats N
 * times and every figure is the median over the rounds (each round kept under {@code rounds}): this
 * machine's speed drifts by up to a quarter within minutes. Writes JSON to stdout and to {@code
 * --output}.
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
      names = "--lora-dropout",
      defaultValue = "" + Bounds.LORA_DROPOUT_DEFAULT,
      description =
          "LoRA dropout on both sides (default: the FineTuneJob's default). Without dropout the"
              + " members of a fused group share one down-projection product.")
  double loraDropout;

  @Option(
      names = "--model",
      description =
          "A Hugging Face model folder (config.json, safetensors, tokenizer) to train instead of"
              + " the generated ~18M-parameter Llama; e.g. a random-weight model at a real shape.")
  Path modelDir;

  @Option(
      names = "--peer-python",
      description =
          "Python of the test bed (torch, transformers, peft; trainer-image/src/test/python/"
              + "testbed.sh) to run the same configuration through transformers + PEFT.")
  String peerPython;

  @Option(
      names = "--peer-script",
      defaultValue = "trainer-image/src/test/python/peft_benchmark.py",
      description = "The peer's script (default relative to the repository root).")
  Path peerScript;

  @Option(
      names = {"--peer-settings", "--peer-precisions"},
      split = ",",
      defaultValue = "fp32,bf16",
      description =
          "The peer's settings to run: fp32, bf16 (torch.autocast on CPU), and either with"
              + " -compiled (torch.compile, inductor): fp32-compiled, bf16-compiled; the fastest"
              + " is compared against.")
  List<String> peerSettings;

  @Option(
      names = "--gradient-checkpointing",
      description =
          "Also train LoRA with gradient checkpointing (activation recomputation) and report its"
              + " speed and peak RSS.")
  boolean gradientCheckpointing;

  @Option(
      names = "--precision",
      defaultValue = "fp32",
      description =
          "KubeTune's precision for the LoRA runs: fp32, or bf16 (frozen base weights held and"
              + " multiplied in bf16, see docs/trainer.md). Full fine-tuning freezes nothing and"
              + " always runs in fp32.")
  Precision precision;

  @Option(
      names = "--rounds",
      defaultValue = "1",
      description =
          "Repeat the whole measurement (both sides) this many times and report the median of"
              + " every figure, each round kept under \"rounds\"; on a noisy machine use 3 or"
              + " more.")
  int rounds;

  /** The scratch directory of this run (training output goes under it). */
  private Path scratch;

  @Override
  public Integer call() throws IOException {
    if (rounds < 1) {
      throw new BadInputException("--rounds must be at least 1, got " + rounds);
    }
    Optional<String> dropoutProblem = Bounds.LORA_DROPOUT.problem(loraDropout);
    if (dropoutProblem.isPresent()) {
      throw new BadInputException("--lora-dropout " + dropoutProblem.get());
    }
    // Refused before anything runs, not after KubeTune's runs.
    peerSettings.forEach(PeerSetting::parse);
    Path dir = workDir != null ? workDir : Files.createTempDirectory("kubetune-benchmark");
    Files.createDirectories(dir);
    scratch = dir;
    Path model = modelDir;
    if (model == null) {
      model = dir.resolve("model");
      TinyLlama.write(
          model, new TinyLlama.Size(hidden, layers, heads, kvHeads, intermediate), true, 1);
    }
    LlamaConfig config = LlamaConfig.read(model.resolve("config.json"));
    Path data = writeData(dir.resolve("data.jsonl"));

    // Loads libtorch before its thread count is read.
    String engine = "DJL 0.36.0, libtorch " + Engine.getInstance().getVersion();
    ObjectNode result = JSON.createObjectNode();
    result.put("threads", JniUtils.getNumThreads());
    result.put("loadAverageAtStart", loadAverage());
    ObjectNode modelNode = result.putObject("model");
    modelNode.put("path", model.toString());
    modelNode.put("parameters", config.parameterCount());
    modelNode.put("hidden", config.hiddenSize()).put("layers", config.numHiddenLayers());
    modelNode.put("heads", config.numAttentionHeads());
    modelNode.put("kvHeads", config.numKeyValueHeads());
    modelNode.put("intermediate", config.intermediateSize());
    modelNode.put("vocab", config.vocabSize());
    result.put("batchSize", batchSize);
    result.put("loraDropout", loraDropout);
    result.put("engine", engine);
    // Whether KubeTune's native operators ran, and their vectorized kernels (see NativeKernels).
    NativeKernels.Status kernels = NativeKernels.status();
    result
        .putObject("nativeKernels")
        .put("loaded", kernels.loaded())
        .put("vectorized", kernels.vectorized())
        .put("detail", kernels.detail());
    result.put("precision", precision.name());
    List<ObjectNode> measured = new ArrayList<>();
    for (int round = 0; round < rounds; round++) {
      measured.add(measureRound(model, data, config));
    }
    if (rounds == 1) {
      result.setAll(measured.get(0));
    } else {
      // Machine speed drifts by as much as the differences measured here, so every speed is the
      // median over rounds, and each ratio the median of the rounds' own ratios (both sides of a
      // round ran minutes apart); memory comes from the first round.
      result.setAll((ObjectNode) medianOf(new ArrayList<>(measured)));
      firstRoundMemory(result, measured.get(0));
      if (result.has("ratios")) {
        putTargets(result);
      }
      result.putArray("rounds").addAll(measured);
    }
    result.put("sequenceLength", tokensPerRow);
    // Without it (no native library) a run's peak RSS includes what earlier runs left freed.
    result.put("freeMemoryReleasedBeforeEachRun", freeMemoryReleased);
    result.put("loadAverageAtEnd", loadAverage());
    String text = JSON.writeValueAsString(result);
    TrainerCli.Context.out.println(text);
    if (output != null) {
      Files.writeString(output, text);
    }
    return 0;
  }

  /**
   * One measurement of both sides: KubeTune's LoRA and full runs with the GEMM rate sampled around
   * them, then (with {@code --peer-python}) the peer's, the ratios and the targets.
   */
  private ObjectNode measureRound(Path model, Path data, LlamaConfig config) throws IOException {
    ObjectNode result = JSON.createObjectNode();
    // The GEMM peak is sampled before, between and after the runs and the best is used: on a
    // shared machine a single sample can land on a busy moment.
    List<Double> gemmSamples = new ArrayList<>();
    List<Double> gemmBf16Samples = new ArrayList<>();
    gemmSamples.add(gemmGflops(false));
    gemmBf16Samples.add(gemmGflops(true));
    Map<TrainingMethod, double[]> runs = new LinkedHashMap<>();
    for (TrainingMethod method : List.of(TrainingMethod.LORA, TrainingMethod.FULL)) {
      runs.put(method, train(model, data, config, method, false));
      gemmSamples.add(gemmGflops(false));
      gemmBf16Samples.add(gemmGflops(true));
    }
    double[] recomputed =
        gradientCheckpointing ? train(model, data, config, TrainingMethod.LORA, true) : null;
    double gemm = gemmSamples.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
    double gemmBf16 = gemmBf16Samples.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
    result.put("gemmGflops", round(gemm));
    var samples = result.putArray("gemmGflopsSamples");
    gemmSamples.forEach(g -> samples.add(round(g)));
    result.put("gemmGflopsBf16", round(gemmBf16));
    var bf16Samples = result.putArray("gemmGflopsBf16Samples");
    gemmBf16Samples.forEach(g -> bf16Samples.add(round(g)));
    for (Map.Entry<TrainingMethod, double[]> e : runs.entrySet()) {
      double tokensPerSecond = e.getValue()[0];
      double flopsPerToken = flopsPerToken(config, e.getKey(), tokensPerRow);
      double achieved = tokensPerSecond * flopsPerToken / 1e9;
      ObjectNode node = result.putObject(e.getKey().name().toLowerCase(Locale.ROOT));
      node.put("precision", precisionOf(e.getKey()).name());
      node.put("tokensPerSecond", round(tokensPerSecond));
      node.put("trainableParameters", (long) e.getValue()[1]);
      node.put("modelGflopsPerToken", round(flopsPerToken / 1e9));
      node.put("achievedGflops", round(achieved));
      // A bf16 run's frozen products run at the bf16 rate, so its share is of that peak.
      double peak = precisionOf(e.getKey()) == Precision.bf16 ? gemmBf16 : gemm;
      node.put("shareOfGemmPeak", round(achieved / peak));
      node.put("secondsPerStep", round(e.getValue()[2]));
      node.put("peakRssMiB", (long) e.getValue()[3]);
    }
    if (recomputed != null) {
      // The same LoRA run with gradient checkpointing: memory against time.
      ObjectNode node = result.putObject("loraGradientCheckpointing");
      node.put("tokensPerSecond", round(recomputed[0]));
      node.put("secondsPerStep", round(recomputed[2]));
      node.put("peakRssMiB", (long) recomputed[3]);
    }
    double loraOverFull = runs.get(TrainingMethod.LORA)[0] / runs.get(TrainingMethod.FULL)[0];
    result.put("loraSpeedupOverFull", round(loraOverFull));
    result.put(
        "peakRssMiB",
        (long) Math.max(runs.get(TrainingMethod.LORA)[3], runs.get(TrainingMethod.FULL)[3]));
    if (peerPython != null) {
      comparePeer(result, model, tokensPerRow);
    }
    return result;
  }

  /**
   * KubeTune's memory figures from the first round. Its runs share one process, and after the first
   * round the peak includes memory retained from the earlier ones (the allocator keeps freed pages;
   * at 135M the LoRA peak grew from 3.6 to 4.4 GB over three rounds), which a trainer process never
   * has; the peer starts a fresh process for every run.
   */
  private static void firstRoundMemory(ObjectNode result, ObjectNode first) {
    result.set("peakRssMiB", first.get("peakRssMiB"));
    for (String method : List.of("lora", "full", "loraGradientCheckpointing")) {
      if (result.has(method)) {
        ((ObjectNode) result.get(method)).set("peakRssMiB", first.get(method).get("peakRssMiB"));
      }
      JsonNode ratios = first.path("ratios").path(method);
      for (String key : List.of("peakRssVsPeerFp32", "peakRssVsPeerFastest")) {
        if (ratios.has(key)) {
          ((ObjectNode) result.get("ratios").get(method)).set(key, ratios.get(key));
        }
      }
    }
  }

  /**
   * The element-wise median of same-shaped JSON results: the median of each number (rounded for
   * integers), the first round's text, flags and lists.
   */
  static JsonNode medianOf(List<JsonNode> nodes) {
    JsonNode first = nodes.get(0);
    if (first.isObject()) {
      ObjectNode out = JSON.createObjectNode();
      first
          .fieldNames()
          .forEachRemaining(
              name -> {
                List<JsonNode> children = new ArrayList<>();
                for (JsonNode node : nodes) {
                  if (node.has(name)) {
                    children.add(node.get(name));
                  }
                }
                out.set(
                    name, children.size() == nodes.size() ? medianOf(children) : first.get(name));
              });
      return out;
    }
    if (!first.isNumber()) {
      return first;
    }
    double[] values = nodes.stream().mapToDouble(JsonNode::asDouble).sorted().toArray();
    int mid = values.length / 2;
    double median = values.length % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    return first.isIntegralNumber()
        ? JSON.getNodeFactory().numberNode(Math.round(median))
        : JSON.getNodeFactory().numberNode(round(median));
  }

  /** {@link #precision} for LoRA; fp32 for full fine-tuning, where no weight is frozen. */
  private Precision precisionOf(TrainingMethod method) {
    return method == TrainingMethod.FULL ? Precision.fp32 : precision;
  }

  /** Whether every KubeTune run so far started with the heap's free memory released. */
  private boolean freeMemoryReleased = true;

  /** Tokens per generated row under the model's tokenizer (set by the first run). */
  private int tokensPerRow;

  /**
   * One KubeTune run through the real trainer: {tokens/s after the warm-up, trainable parameters,
   * seconds per step, peak RSS in MiB}.
   */
  private double[] train(
      Path model, Path data, LlamaConfig config, TrainingMethod method, boolean recompute) {
    TrainingOptions defaults =
        TrainingOptions.defaults(model, data, DatasetFormat.COMPLETION, scratch.resolve("out"));
    TrainingOptions options =
        defaults
            .withRegularisation(
                defaults.weightDecay(), defaults.maxGradNorm(), loraDropout, defaults.seed())
            .withMethod(method, loraRank, 2.0 * loraRank, TARGETS, config.numHiddenLayers())
            .withSchedule(steps, 1, 1e-4, batchSize, 1, 0)
            .withMaxSequenceLength(
                Math.min(config.maxPositionEmbeddings(), Math.max(512, 2 * sequenceLength)))
            .withGradientCheckpointing(recompute)
            .withPrecision(precisionOf(method));
    // Each run's peak resident set is its own, as the peer's is in its fresh process: the heap's
    // free memory (what earlier runs left with the allocator) goes back to the system, then the
    // kernel's high-water mark is reset.
    System.gc();
    freeMemoryReleased &= NativeKernels.releaseFreeMemory();
    resetPeakRss();
    FineTuner.Result run;
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      tokensPerRow = rowLength(tuner);
      run = tuner.train();
    }
    double[] start = run.trainLoss().get(warmupSteps - 1);
    double[] end = run.trainLoss().get(run.trainLoss().size() - 1);
    double tokensPerSecond = (end[3] - start[3]) / (end[2] - start[2]);
    double secondsPerStep = (end[2] - start[2]) / (end[0] - start[0]);
    return new double[] {
      tokensPerSecond, run.trainableParameters(), secondsPerStep, peakRssMiB(),
    };
  }

  /**
   * Runs every (method, setting) of the peer, each in its own process, adds {@code peer} with the
   * fastest setting per method, and {@code ratios} and {@code targets} (issue 10's goals) to the
   * result. Ratios above 1 favour KubeTune for speed; for memory, below 1 does.
   */
  private void comparePeer(ObjectNode result, Path model, int tokensPerRow) throws IOException {
    ObjectNode peer = result.putObject("peer");
    ObjectNode ratios = result.putObject("ratios");
    Map<String, ObjectNode> fastest = new LinkedHashMap<>();
    boolean gemmMeasured = false;
    for (String method : List.of("lora", "full")) {
      ObjectNode bySetting = peer.putObject(method);
      for (String name : peerSettings) {
        ObjectNode run =
            runPeer(model, method, PeerSetting.parse(name), tokensPerRow, !gemmMeasured);
        run.put("setting", name);
        if (!gemmMeasured) {
          peer.put("engine", run.path("engine").asText());
          peer.put("transformers", run.path("transformers").asText());
          peer.put("peft", run.path("peft").asText());
          peer.put("attention", run.path("attention").asText());
          peer.set("gemmGflops", run.remove("gemmGflops"));
          peer.set("gemmGflopsBf16", run.remove("gemmGflopsBf16"));
          gemmMeasured = true;
        }
        for (String key : List.of("engine", "transformers", "peft", "attention", "method")) {
          run.remove(key);
        }
        bySetting.set(name, run);
        ObjectNode best = fastest.get(method);
        if (best == null
            || run.get("tokensPerSecond").asDouble() > best.get("tokensPerSecond").asDouble()) {
          fastest.put(method, run);
        }
      }
      ObjectNode best = fastest.get(method);
      bySetting.put("fastest", best.get("setting").asText());
      ObjectNode ours = (ObjectNode) result.get(method);
      double speed =
          ours.get("tokensPerSecond").asDouble() / best.get("tokensPerSecond").asDouble();
      ObjectNode fp32 = (ObjectNode) bySetting.get("fp32");
      ObjectNode ratio = ratios.putObject(method);
      ratio.put("tokensPerSecondVsPeerFastest", round(speed));
      if (fp32 != null) {
        ratio.put(
            "tokensPerSecondVsPeerFp32",
            round(ours.get("tokensPerSecond").asDouble() / fp32.get("tokensPerSecond").asDouble()));
        ratio.put(
            "peakRssVsPeerFp32",
            round(ours.get("peakRssMiB").asDouble() / fp32.get("peakRssMiB").asDouble()));
      }
      ratio.put(
          "peakRssVsPeerFastest",
          round(ours.get("peakRssMiB").asDouble() / best.get("peakRssMiB").asDouble()));
    }
    double peerLoraOverFull =
        fastest.get("lora").get("tokensPerSecond").asDouble()
            / fastest.get("full").get("tokensPerSecond").asDouble();
    peer.put("loraSpeedupOverFull", round(peerLoraOverFull));
    ratios.put(
        "gemmVsPeer",
        round(result.get("gemmGflops").asDouble() / peer.get("gemmGflops").asDouble()));
    ratios.put(
        "gemmBf16VsPeer",
        round(result.get("gemmGflopsBf16").asDouble() / peer.get("gemmGflopsBf16").asDouble()));
    putTargets(result);
  }

  /**
   * One configuration of the peer: a precision, run eagerly or under {@code torch.compile} (the
   * default inductor backend, which generates fused C++ kernels for the element-wise chains).
   */
  record PeerSetting(String precision, boolean compiled) {
    private static final String COMPILED = "-compiled";

    /** The setting {@code name} (fp32, bf16, fp32-compiled, bf16-compiled), or bad input. */
    static PeerSetting parse(String name) {
      boolean compiled = name.endsWith(COMPILED);
      String precision = compiled ? name.substring(0, name.length() - COMPILED.length()) : name;
      if (!precision.equals("fp32") && !precision.equals("bf16")) {
        throw new BadInputException(
            "--peer-settings: unknown setting '"
                + name
                + "'; use fp32, bf16, fp32-compiled or bf16-compiled");
      }
      return new PeerSetting(precision, compiled);
    }
  }

  /** Issue 10's goals, judged on {@code result}'s ratios and LoRA-over-full speed-up. */
  private static void putTargets(ObjectNode result) {
    JsonNode ratios = result.get("ratios");
    double loraSpeed = ratios.get("lora").get("tokensPerSecondVsPeerFastest").asDouble();
    double loraRss = ratios.get("lora").get("peakRssVsPeerFastest").asDouble();
    double loraOverFull = result.get("loraSpeedupOverFull").asDouble();
    ObjectNode targets = result.putObject("targets");
    targets
        .putObject("loraTokensPerSecondVsPeerFastest")
        .put("goal", ">= 1.2")
        .put("value", loraSpeed)
        .put("met", loraSpeed >= 1.2);
    targets
        .putObject("loraPeakRssVsPeerFastest")
        .put("goal", "<= 1.0")
        .put("value", loraRss)
        .put("met", loraRss <= 1.0);
    targets
        .putObject("loraSpeedupOverFull")
        .put("goal", ">= 1.3")
        .put("value", round(loraOverFull))
        .put("met", loraOverFull >= 1.3);
  }

  /** One peer configuration in its own Python process, with the same intra-op thread count. */
  private ObjectNode runPeer(
      Path model, String method, PeerSetting setting, int tokensPerRow, boolean gemm)
      throws IOException {
    List<String> command =
        new ArrayList<>(
            List.of(
                peerPython,
                peerScript.toString(),
                "--model",
                model.toString(),
                "--method",
                method,
                "--precision",
                setting.precision(),
                "--threads",
                String.valueOf(JniUtils.getNumThreads()),
                "--batch-size",
                String.valueOf(batchSize),
                "--sequence-length",
                String.valueOf(tokensPerRow),
                "--steps",
                String.valueOf(steps),
                "--warmup-steps",
                String.valueOf(warmupSteps),
                "--lora-rank",
                String.valueOf(loraRank),
                "--lora-alpha",
                String.valueOf(2.0 * loraRank),
                "--lora-dropout",
                String.valueOf(loraDropout),
                "--target-modules",
                String.join(",", TARGETS),
                "--learning-rate",
                "1e-4",
                "--weight-decay",
                String.valueOf(Bounds.WEIGHT_DECAY_DEFAULT),
                "--max-grad-norm",
                String.valueOf(Bounds.MAX_GRAD_NORM_DEFAULT)));
    if (setting.compiled()) {
      command.add("--compile");
    }
    if (gemm) {
      command.add("--gemm");
    }
    Path err = Files.createTempFile("kubetune-peer", ".log");
    try {
      ProcessBuilder builder =
          new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.to(err.toFile()));
      // CPU only, and never the Hugging Face Hub: the model is the local folder.
      builder.environment().put("CUDA_VISIBLE_DEVICES", "");
      builder.environment().put("HF_HUB_OFFLINE", "1");
      builder.environment().put("TRANSFORMERS_VERBOSITY", "error");
      builder.environment().put("TOKENIZERS_PARALLELISM", "false");
      Process process = builder.start();
      byte[] out = process.getInputStream().readAllBytes();
      if (process.waitFor() != 0) {
        throw new IOException(
            "peer benchmark (" + String.join(" ", command) + ") failed:\n" + Files.readString(err));
      }
      return (ObjectNode) JSON.readTree(out);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    } finally {
      Files.deleteIfExists(err);
    }
  }

  /**
   * Tokens per row of the generated data under this model's tokenizer; every row has the same
   * length, so batches carry no padding and the peer gets exactly as many tokens per step.
   */
  private static int rowLength(FineTuner tuner) {
    int length = tuner.trainExamples().get(0).tokens().length;
    for (var example : tuner.trainExamples()) {
      if (example.tokens().length != length) {
        throw new IllegalStateException(
            "benchmark rows tokenize to different lengths ("
                + length
                + " and "
                + example.tokens().length
                + "); the comparison needs unpadded batches");
      }
    }
    return length;
  }

  private static final List<String> TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

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

  /**
   * Best of a few timed 1024x1024 matmuls (2n^3 FLOPs each), fp32 or bf16 (both operands bf16, fp32
   * accumulation inside the GEMM, as the frozen products of {@code --precision bf16} run).
   */
  static double gemmGflops(boolean bf16) {
    int n = 1024;
    try (NDManager manager = NDManager.newBaseManager();
        Bf16Ops casts = Bf16Ops.load(manager)) {
      NDArray a = manager.randomNormal(new Shape(n, n));
      NDArray b = manager.randomNormal(new Shape(n, n));
      if (bf16) {
        a = casts.toBf16(a);
        b = casts.toBf16(b);
      }
      double best = 0;
      for (int round = 0; round < 6; round++) {
        int repeats = 8;
        long start = System.nanoTime();
        for (int i = 0; i < repeats; i++) {
          NDArray c = a.matMul(b);
          if (i == repeats - 1) {
            // Reading the last product waits for all of them on a device that runs ops async.
            if (bf16) {
              try (NDArray wide = casts.toFloat32(c)) {
                wide.getFloat(0, 0);
              }
            } else {
              c.getFloat(0, 0);
            }
          }
          c.close();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        best = Math.max(best, repeats * 2.0 * n * n * n / seconds / 1e9);
      }
      return best;
    }
  }

  /** Resets this process's peak resident set (VmHWM) to the current one (Linux 4.0+). */
  static void resetPeakRss() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException | UnsupportedOperationException e) {
      // not Linux, or not permitted: the peak then covers the whole process
    }
  }

  /** The 1-minute load average (other work sharing the CPU lowers every figure). */
  static double loadAverage() {
    try {
      return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
    } catch (IOException | RuntimeException e) {
      return -1;
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
