package io.kubetune.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.Bounds;
import io.kubetune.api.trainer.TrainerEnvironment;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.serve.ModelRepository;
import io.kubetune.trainer.serve.OpenAiServer;
import io.kubetune.trainer.serve.RecentRequests;
import io.kubetune.trainer.serve.Variants;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code trainer serve}: the serving Deployment's container. Listens first (so liveness answers
 * while a large model loads), then loads and verifies the base model and adapters, then reports
 * ready. A model or adapter that cannot be served ends the process with exit code 2 and the reason
 * on stderr and in {@code /health/ready}; SIGTERM drains running requests and exits.
 */
@Command(
    name = "serve",
    description = "Serve a base model and adapters over an OpenAI-compatible HTTP API.")
final class Serve implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(
      names = "--model",
      required = true,
      description = "Base model folder: a path, file:// or s3:// URI (config.json, safetensors).")
  String model;

  @Option(
      names = "--model-name",
      description = "Id of the base model in the API (default: folder name).")
  String modelName;

  @Option(
      names = "--adapter",
      description = "NAME=URI of a PEFT LoRA adapter or fully fine-tuned model folder; repeatable.")
  List<String> adapters = new ArrayList<>();

  @Option(
      names = "--adapter-digest",
      description =
          "Expected SHA-256 of an adapter's weights file, as SHA (for the --adapter in the same"
              + " position) or NAME=SHA; repeatable.")
  List<String> digests = new ArrayList<>();

  @Option(
      names = "--canary",
      description =
          "NAME=URI of a new adapter served as the canary of the --adapter NAME: it answers"
              + " --canary-weight percent of the requests for NAME (also addressable as"
              + " NAME:canary; the other as NAME:stable).")
  String canary;

  @Option(
      names = "--canary-digest",
      description = "Expected SHA-256 of the canary adapter's weights file.")
  String canaryDigest;

  @Option(
      names = "--canary-weight",
      description = "Percent of the requests for NAME the canary answers (1-99, default 10).")
  Integer canaryWeight;

  @Option(
      names = "--feedback-memory",
      defaultValue = "" + RecentRequests.DEFAULT_CAPACITY,
      description = "Ids of the last answered requests kept for POST /v1/feedback.")
  int feedbackMemory;

  @Option(names = "--host", defaultValue = "0.0.0.0")
  String host;

  @Option(names = "--port", defaultValue = "8000")
  int port;

  @Option(
      names = "--workers",
      defaultValue = "${env:KUBETUNE_SERVE_WORKERS:-1}",
      description = "Requests computed at the same time.")
  int workers;

  @Option(
      names = "--queue",
      defaultValue = "${env:KUBETUNE_SERVE_QUEUE:-16}",
      description = "Requests waiting for a worker before the server answers 429.")
  int queue;

  @Option(names = "--max-body-bytes", defaultValue = "1048576")
  int maxBodyBytes;

  @Option(
      names = "--max-classify-inputs",
      defaultValue = "" + OpenAiServer.Settings.DEFAULT_MAX_CLASSIFY_INPUTS,
      description = "Most inputs in one /v1/classify request (more: 400).")
  int maxClassifyInputs;

  @Option(
      names = "--max-classify-tokens",
      defaultValue = "" + OpenAiServer.Settings.DEFAULT_MAX_CLASSIFY_TOKENS,
      description = "Most tokens of all inputs of one /v1/classify request (more: 400).")
  int maxClassifyTokens;

  @Option(
      names = "--shutdown-delay-seconds",
      defaultValue = "5",
      description =
          "After SIGTERM: time requests are still accepted while readiness reports 503, so that"
              + " requests routed here before the endpoints dropped the pod do not fail.")
  long shutdownDelaySeconds;

  @Option(
      names = "--drain-seconds",
      defaultValue = "10",
      description = "After SIGTERM: time running requests get to finish.")
  long drainSeconds;

  @Override
  public Integer call() throws Exception {
    if (workers < 1 || queue < 0) {
      throw new BadInputException("--workers must be at least 1 and --queue at least 0");
    }
    if (maxClassifyInputs < 1 || maxClassifyTokens < 1) {
      throw new BadInputException(
          "--max-classify-inputs and --max-classify-tokens must be at least 1");
    }
    if (shutdownDelaySeconds < 0 || drainSeconds < 0) {
      throw new BadInputException(
          "--shutdown-delay-seconds and --drain-seconds must be at least 0");
    }
    if (feedbackMemory < 1) {
      throw new BadInputException("--feedback-memory must be at least 1");
    }
    List<ModelRepository.AdapterSource> sources = adapterSources(adapters, digests);
    Map<String, Integer> canaryWeights = addCanary(sources, canary, canaryDigest, canaryWeight);
    PrintStream out = TrainerCli.Context.out;
    OpenAiServer server =
        new OpenAiServer(
            new OpenAiServer.Settings(
                host,
                port,
                workers,
                queue,
                maxBodyBytes,
                maxClassifyInputs,
                maxClassifyTokens,
                feedbackMemory),
            System.err);
    int actualPort = server.start();
    out.println(JSON.writeValueAsString(Map.of("event", "listening", "port", actualPort)));
    Path workDir = Files.createTempDirectory(stagingRoot(), "serve-");
    ModelRepository repository;
    Variants variants;
    try {
      repository =
          ModelRepository.load(
              model,
              modelName != null ? modelName : defaultName(model),
              sources,
              StorageSettings.fromEnvironment(System.getenv()),
              workDir,
              System.err);
      try {
        variants = new Variants(repository, canaryWeights, Instant.now());
      } catch (RuntimeException e) {
        repository.close();
        throw e;
      }
    } catch (IOException | RuntimeException e) {
      server.failed(TrainerCli.oneLine(e));
      server.close(Duration.ZERO);
      throw e;
    }
    server.ready(repository, variants);
    Map<String, Object> ready = new LinkedHashMap<>();
    ready.put("event", "ready");
    ready.put("port", actualPort);
    ready.put("models", repository.all().stream().map(ModelRepository.ServedModel::id).toList());
    out.println(JSON.writeValueAsString(ready));

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.close(
                      Duration.ofSeconds(shutdownDelaySeconds), Duration.ofSeconds(drainSeconds));
                  repository.close();
                  stopped.countDown();
                },
                "serve-shutdown"));
    stopped.await();
    return TrainerExitCodes.SUCCESS;
  }

  /**
   * Adds the --canary adapter to {@code sources} under {@code NAME:canary} and returns its weight
   * by NAME (empty without a canary). The canary must name an --adapter, and the weight is checked
   * against the same bound as serving.canary.weight.
   */
  static Map<String, Integer> addCanary(
      List<ModelRepository.AdapterSource> sources, String canary, String digest, Integer weight) {
    if (canary == null) {
      if (digest != null || weight != null) {
        throw new BadInputException(
            "--canary-digest and --canary-weight need --canary NAME=URI; add it or remove them");
      }
      return Map.of();
    }
    int eq = canary.indexOf('=');
    if (eq <= 0 || eq == canary.length() - 1) {
      throw new BadInputException(
          "--canary "
              + canary
              + ": expected NAME=URI of the new adapter for --adapter NAME, e.g. --canary"
              + " support=s3://bucket/job/final/<revision-2>/");
    }
    String name = canary.substring(0, eq);
    if (sources.stream().noneMatch(s -> s.name().equals(name))) {
      throw new BadInputException(
          "--canary "
              + name
              + "=...: no --adapter is named "
              + name
              + "; a canary is served next to the adapter it would replace");
    }
    int w = weight != null ? weight : Bounds.CANARY_WEIGHT_DEFAULT;
    Bounds.CANARY_WEIGHT
        .problem(w)
        .ifPresent(
            p -> {
              throw new BadInputException("--canary-weight " + p + " (percent of requests)");
            });
    sources.add(
        new ModelRepository.AdapterSource(
            Variants.canaryId(name), canary.substring(eq + 1), digest));
    return Map.of(name, w);
  }

  /** Pairs each --adapter NAME=URI with its digest (by NAME=, else by position). */
  static List<ModelRepository.AdapterSource> adapterSources(
      List<String> adapters, List<String> digests) {
    Map<String, String> digestByName = new LinkedHashMap<>();
    List<String> positional = new ArrayList<>();
    for (String d : digests) {
      int eq = d.indexOf('=');
      if (eq > 0) {
        digestByName.put(d.substring(0, eq), d.substring(eq + 1));
      } else {
        positional.add(d);
      }
    }
    List<ModelRepository.AdapterSource> sources = new ArrayList<>();
    for (int i = 0; i < adapters.size(); i++) {
      String a = adapters.get(i);
      int eq = a.indexOf('=');
      if (eq <= 0 || eq == a.length() - 1) {
        throw new BadInputException(
            "--adapter "
                + a
                + ": expected NAME=URI, e.g. --adapter support=s3://bucket/job/final/<revision>/");
      }
      String name = a.substring(0, eq);
      if (name.indexOf(Variants.SEPARATOR) >= 0) {
        throw new BadInputException(
            "--adapter "
                + a
                + ": the name may not hold '"
                + Variants.SEPARATOR
                + "' (it separates a model from its variant, as in NAME:canary); rename it");
      }
      String digest =
          digestByName.getOrDefault(name, i < positional.size() ? positional.get(i) : null);
      sources.add(new ModelRepository.AdapterSource(name, a.substring(eq + 1), digest));
    }
    for (String name : digestByName.keySet()) {
      if (sources.stream().noneMatch(s -> s.name().equals(name))) {
        throw new BadInputException(
            "--adapter-digest " + name + "=...: no --adapter is named " + name);
      }
    }
    if (positional.size() > adapters.size()) {
      throw new BadInputException(
          "--adapter-digest: "
              + positional.size()
              + " digests for "
              + adapters.size()
              + " adapters");
    }
    return sources;
  }

  /** The last path segment of the model folder: {@code s3://b/models/mini/} gives {@code mini}. */
  static String defaultName(String uri) {
    String trimmed = uri.replaceAll("/+$", "");
    String name = trimmed.substring(trimmed.lastIndexOf('/') + 1);
    return name.isEmpty() ? "base" : name;
  }

  private static Path stagingRoot() throws IOException {
    String configured = System.getenv(TrainerEnvironment.STAGING_DIR);
    Path dir =
        configured != null && !configured.isBlank()
            ? Path.of(configured)
            : Path.of(System.getProperty("java.io.tmpdir"));
    Files.createDirectories(dir);
    return dir;
  }
}
