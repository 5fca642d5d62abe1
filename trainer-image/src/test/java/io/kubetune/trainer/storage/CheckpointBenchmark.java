package io.kubetune.trainer.storage;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.checkpoint.Checkpoint;
import io.kubetune.trainer.checkpoint.CheckpointMetadata;
import io.kubetune.trainer.checkpoint.CheckpointStore;
import io.kubetune.trainer.checkpoint.Manifest;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.train.CheckpointOptions;
import io.kubetune.trainer.train.FineTuner;
import io.kubetune.trainer.train.ProgressReporter;
import io.kubetune.trainer.train.TrainingMethod;
import io.kubetune.trainer.train.TrainingOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Checkpoint write throughput: {@link CheckpointStore#commit} of the trainer's real checkpoint
 * files (one Full fine-tuning step of a Llama model: weights + AdamW moments + state), next to raw
 * SDK PUTs of the same files and {@link S3ObjectStore#put} of them, same S3Proxy, same run, same
 * client configuration; plus the checkpoint sizes of LoRA and Full on that model. Not a test: run
 * with
 *
 * <pre>
 * java -Xmx3g -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) \
 *   -Dai.djl.offline=true -DDJL_CACHE_DIR=target/djl-cache -DENGINE_CACHE_DIR=target/djl-cache \
 *   io.kubetune.trainer.storage.CheckpointBenchmark [rounds] [out.json] [hidden] [layers]
 * </pre>
 *
 * The median of the rounds (after one warm-up) is reported.
 */
public final class CheckpointBenchmark {
  private static final String BUCKET = "bench";

  public static void main(String[] args) throws Exception {
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
    Path out = Path.of(args.length > 1 ? args[1] : "target/checkpoint-benchmark.json");
    int hidden = args.length > 2 ? Integer.parseInt(args[2]) : 512;
    int layers = args.length > 3 ? Integer.parseInt(args[3]) : 4;

    Path dir = Files.createTempDirectory("checkpoint-bench");
    try {
      Path model = dir.resolve("model");
      LlamaConfig config =
          TinyLlama.write(
              model, new TinyLlama.Size(hidden, layers, 8, 4, hidden * 11 / 4), true, 1);
      Path train = Fixtures.completions(dir.resolve("train.jsonl"), 32, 1);
      Map<String, Object> report = new LinkedHashMap<>();
      report.put(
          "model",
          Map.of("hidden", hidden, "layers", layers, "parameters", config.parameterCount()));
      Map<String, Path> full = checkpointFiles(dir, model, train, TrainingMethod.FULL);
      Map<String, Path> lora = checkpointFiles(dir, model, train, TrainingMethod.LORA);
      report.put("checkpointBytes", Map.of("full", sizes(full), "lora", sizes(lora)));
      long bytes = total(full);
      System.err.printf("Full checkpoint %.1f MB, LoRA %.3f MB%n", bytes / 1e6, total(lora) / 1e6);

      Map<String, List<Double>> mbps = new LinkedHashMap<>();
      for (String mode : List.of("raw_put", "store_put", "checkpoint_commit")) {
        mbps.put(mode, new ArrayList<>());
      }
      try (S3ProxyServer server = S3ProxyServer.start(BUCKET)) {
        StaticCredentialsProvider credentials =
            StaticCredentialsProvider.create(
                AwsBasicCredentials.create(S3ProxyServer.ACCESS_KEY, S3ProxyServer.SECRET_KEY));
        StorageSettings settings =
            StorageSettings.defaults()
                .withEndpoint(server.endpoint())
                .withRegion("us-east-1")
                .withPathStyle(true);
        StorageUri root = StorageUri.parse("s3://" + BUCKET + "/bench/");
        try (S3Client raw =
                S3ObjectStore.clientBuilder(settings, credentials, List.of())
                    .overrideConfiguration(
                        o -> o.retryStrategy(AwsRetryStrategy.standardRetryStrategy()))
                    .build();
            S3ObjectStore store = S3ObjectStore.create(root, settings, credentials)) {
          CheckpointStore checkpoints = new CheckpointStore(store, dir.resolve("scratch"));
          for (int round = 0; round <= rounds; round++) {
            boolean warmup = round == 0;
            long t = System.nanoTime();
            for (Map.Entry<String, Path> e : full.entrySet()) {
              raw.putObject(
                  b -> b.bucket(BUCKET).key("bench/raw/" + e.getKey()),
                  RequestBody.fromFile(e.getValue()));
            }
            record(mbps, "raw_put", bytes, t, warmup);

            t = System.nanoTime();
            for (Map.Entry<String, Path> e : full.entrySet()) {
              store.put("store/" + e.getKey(), e.getValue());
            }
            record(mbps, "store_put", bytes, t, warmup);

            t = System.nanoTime();
            var result =
                checkpoints.commit(
                    round + 1, full, CheckpointMetadata.of("bench", Map.of("eval_loss", 1.0)));
            record(mbps, "checkpoint_commit", bytes, t, warmup);
            if (!result.committed()) {
              throw new IllegalStateException(result.message());
            }
            store.delete(store.list("", true).stream().map(ObjectInfo::key).toList());
          }
        }
      }
      Map<String, Object> results = new LinkedHashMap<>();
      mbps.forEach(
          (mode, samples) ->
              results.put(
                  mode,
                  Map.of(
                      "medianMBps",
                      round1(median(samples)),
                      "samplesMBps",
                      samples.stream().map(CheckpointBenchmark::round1).toList())));
      report.put("checkpointMB", round1(bytes / 1e6));
      report.put("files", full.size());
      report.put("rounds", rounds);
      report.put("cpus", Runtime.getRuntime().availableProcessors());
      report.put("results", results);
      double rawPut = median(mbps.get("raw_put"));
      report.put("commitVsRawPut", round3(median(mbps.get("checkpoint_commit")) / rawPut));
      report.put("storePutVsRawPut", round3(median(mbps.get("store_put")) / rawPut));

      String text =
          new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report);
      System.out.println(text);
      if (out.getParent() != null) {
        Files.createDirectories(out.getParent());
      }
      Files.writeString(out, text + "\n");
    } finally {
      deleteTree(dir);
    }
  }

  /** The files of a real checkpoint after one step of {@code method}, by their names. */
  private static Map<String, Path> checkpointFiles(
      Path dir, Path model, Path train, TrainingMethod method) throws Exception {
    String name = method.name().toLowerCase();
    Path store = dir.resolve("ckpt-" + name);
    TrainingOptions options =
        TrainingOptions.defaults(model, train, DatasetFormat.COMPLETION, dir.resolve("out-" + name))
            .withMethod(method, 8, 16, List.of("q_proj", "v_proj"), 1)
            .withSchedule(1, 1, 1e-4, 4, 1, 0);
    CheckpointOptions checkpoints =
        new CheckpointOptions(store.toUri().toString(), 1, 1, "bench", StorageSettings.defaults());
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent(), checkpoints)) {
      tuner.train();
    }
    try (ObjectStore files =
        ObjectStores.forUri(store.toUri().toString(), StorageSettings.defaults())) {
      Checkpoint cp =
          new CheckpointStore(files, dir.resolve("scratch-" + name))
              .latestValid("bench")
              .orElseThrow();
      Map<String, Path> out = new LinkedHashMap<>();
      for (Manifest.FileEntry f : cp.manifest().files()) {
        out.put(
            f.name(),
            store.resolve(cp.folder()).resolve(cp.manifest().attempt()).resolve(f.name()));
      }
      return out;
    }
  }

  private static Map<String, Long> sizes(Map<String, Path> files) throws Exception {
    Map<String, Long> sizes = new LinkedHashMap<>();
    for (Map.Entry<String, Path> e : files.entrySet()) {
      sizes.put(e.getKey(), Files.size(e.getValue()));
    }
    sizes.put("total", total(files));
    return sizes;
  }

  private static long total(Map<String, Path> files) throws Exception {
    long sum = 0;
    for (Path p : files.values()) {
      sum += Files.size(p);
    }
    return sum;
  }

  private static void record(
      Map<String, List<Double>> mbps, String mode, long bytes, long startNanos, boolean warmup) {
    double seconds = (System.nanoTime() - startNanos) / 1e9;
    if (!warmup) {
      mbps.get(mode).add(bytes / 1e6 / seconds);
    }
  }

  private static double median(List<Double> values) {
    double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return v.length == 0 ? Double.NaN : v[v.length / 2];
  }

  private static double round1(double v) {
    return Math.round(v * 10) / 10.0;
  }

  private static double round3(double v) {
    return Math.round(v * 1000) / 1000.0;
  }

  private static void deleteTree(Path dir) throws Exception {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private CheckpointBenchmark() {}
}
