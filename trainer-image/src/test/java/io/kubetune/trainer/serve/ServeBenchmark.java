package io.kubetune.trainer.serve;

import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.kubetune.trainer.model.Generator;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.serve.ModelRepository.AdapterSource;
import io.kubetune.trainer.serve.ModelRepository.ServedModel;
import io.kubetune.trainer.storage.StorageSettings;
import io.kubetune.trainer.train.EngineThreads;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.ToDoubleFunction;
import java.util.stream.Stream;

/**
 * Serving speed of {@code trainer serve}: a real in-process {@link OpenAiServer} over HTTP,
 * streamed completions read by {@link HttpClient} as server-sent events, so time to first token
 * (TTFT) is taken at the client when the first chunk with text arrives. For the base model and a
 * house-style LoRA adapter on it: tokens/s and TTFT one request at a time, and under concurrent
 * clients with 1 and 2 workers (TTFT then includes queueing); the load time of the base and of the
 * adapter; and, on the same model and prompts, the in-process {@link Generator} (the model alone)
 * and {@link Inference} (a worker's code without HTTP), so the cost of the server (incremental
 * detokenisation, then HTTP and SSE) is visible as ratios. Runs on examples/models/kubetune-mini
 * and on a larger random Llama written by {@link TinyLlama} (per-token work there is not all op
 * overhead). Greedy (temperature 0), fixed prompts, fixed {@code max_tokens}; the token count of
 * every request is checked. Not a test: run from trainer-image with
 *
 * <pre>
 * java -Xmx3g -cp target/test-classes:target/classes:../operator/api/target/classes:$(cat target/test-classpath.txt) \
 *   -Dai.djl.offline=true -DDJL_CACHE_DIR=target/djl-cache -DENGINE_CACHE_DIR=target/djl-cache \
 *   io.kubetune.trainer.serve.ServeBenchmark [out.json] [requests] [max_tokens] [hidden] [layers] [clients]
 * </pre>
 *
 * {@code hidden} 0 skips the larger model. Medians and p90 of {@code requests} measured requests
 * per row, after warm-up requests that are not counted.
 */
public final class ServeBenchmark {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  private static final String ADAPTER = "house-style";
  private static final int WARMUP = 6;
  private static final int LOADS = 3;

  /** Fixed prompts (in the adapter's domain), used in turn. */
  static final List<String> PROMPTS =
      List.of(
          ServeFixtures.HOUSE_STYLE_PROMPT,
          "how can I reset my password",
          "Good morning, where is my order?",
          "Can you tell me how to cancel my subscription?");

  /**
   * One request as the client saw it.
   *
   * @param ttft seconds from sending to the first text (HTTP) or the first token (in-process)
   * @param seconds seconds from sending to the end of the answer
   * @param tokens completion tokens ({@code usage.completion_tokens} over HTTP)
   * @param chunks SSE chunks that carried text (0 in-process)
   */
  record Sample(String prompt, double ttft, double seconds, int tokens, int chunks, String text) {
    double tokensPerSecond() {
      return tokens / seconds;
    }

    /** Generation rate after the first token: what a reader of the stream sees. */
    double decodeTokensPerSecond() {
      return (tokens - 1) / (seconds - ttft);
    }
  }

  /** A set of requests run together, with the wall time they took. */
  record Run(List<Sample> samples, double wallSeconds) {}

  public static void main(String[] args) throws Exception {
    Path out = Path.of(args.length > 0 ? args[0] : "target/serve-benchmark.json");
    int requests = args.length > 1 ? Integer.parseInt(args[1]) : 16;
    int maxTokens = args.length > 2 ? Integer.parseInt(args[2]) : 64;
    int hidden = args.length > 3 ? Integer.parseInt(args[3]) : 512;
    int layers = args.length > 4 ? Integer.parseInt(args[4]) : 8;
    int clients = args.length > 5 ? Integer.parseInt(args[5]) : 4;
    int cores = Runtime.getRuntime().availableProcessors();
    // The thread choice of `trainer serve` (TrainerCli.useContainerCpuLimit).
    if (System.getProperty("ai.djl.pytorch.num_threads") == null
        && System.getenv("OMP_NUM_THREADS") == null) {
      System.setProperty("ai.djl.pytorch.num_threads", String.valueOf(cores));
      System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
      System.setProperty(EngineThreads.AUTO_PROPERTY, "true");
    }

    Map<String, Object> report = new LinkedHashMap<>();
    report.put("started", Instant.now().toString());
    report.put("machine", machine(cores));
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("requestsPerRow", requests);
    settings.put("warmupRequests", WARMUP);
    settings.put("maxTokens", maxTokens);
    settings.put("temperature", 0);
    settings.put("stream", true);
    settings.put("concurrentClients", clients);
    settings.put("workers", List.of(1, 2));
    settings.put("loadRepeats", LOADS);
    settings.put("prompts", PROMPTS);
    report.put("settings", settings);
    List<Map<String, Object>> models = new ArrayList<>();
    report.put("models", models);

    Path dir = Files.createTempDirectory("serve-bench");
    try {
      System.err.println("training the house-style adapter on kubetune-mini");
      Path miniAdapter = ServeFixtures.houseStyleAdapter(dir.resolve("mini-style"), 40);
      models.add(
          benchmark(
              "kubetune-mini",
              ServeFixtures.BASE,
              miniAdapter,
              dir,
              requests,
              maxTokens,
              clients,
              cores));
      if (hidden > 0) {
        Path large = dir.resolve("large");
        LlamaConfig config =
            TinyLlama.write(
                large, new TinyLlama.Size(hidden, layers, 8, 4, hidden * 11 / 4), true, 1);
        System.err.printf(
            Locale.ROOT,
            "training the house-style adapter on llama-%dx%d (%,d parameters)%n",
            hidden,
            layers,
            config.parameterCount());
        Path largeAdapter = ServeFixtures.houseStyleAdapter(large, dir.resolve("large-style"), 6);
        models.add(
            benchmark(
                "llama-" + hidden + "x" + layers,
                large,
                largeAdapter,
                dir,
                requests,
                maxTokens,
                clients,
                cores));
      }
    } finally {
      deleteTree(dir);
    }
    report.put("finished", Instant.now().toString());
    report.put(
        "loadAverageAtEnd", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());

    System.out.println(table(models, clients));
    String text =
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report);
    if (out.getParent() != null) {
      Files.createDirectories(out.getParent());
    }
    Files.writeString(out, text + "\n");
    System.out.println("wrote " + out.toAbsolutePath());
    System.exit(0);
  }

  private static Map<String, Object> benchmark(
      String name,
      Path basePath,
      Path adapterPath,
      Path dir,
      int requests,
      int maxTokens,
      int clients,
      int cores)
      throws Exception {
    System.err.println("benchmarking " + name);
    // Each model gets the threads the CLI would give it (tuneFor may lower them for small models).
    JniUtils.setNumThreads(cores);
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("model", name);
    List<AdapterSource> adapters =
        List.of(new AdapterSource(ADAPTER, adapterPath.toString(), null));

    List<Double> baseAlone = new ArrayList<>();
    List<Double> baseWithAdapter = new ArrayList<>();
    List<Double> adapterLoad = new ArrayList<>();
    List<Double> repositoryLoad = new ArrayList<>();
    ModelRepository repository = null;
    for (int i = 0; i <= LOADS; i++) {
      boolean warmup = i == 0;
      try (ModelRepository alone =
          ModelRepository.load(
              basePath.toString(),
              name,
              List.of(),
              StorageSettings.defaults(),
              dir.resolve("work"),
              QUIET)) {
        if (!warmup) {
          baseAlone.add(alone.get(name).loadSeconds());
        }
      }
      if (repository != null) {
        repository.close();
      }
      long t = System.nanoTime();
      repository =
          ModelRepository.load(
              basePath.toString(),
              name,
              adapters,
              StorageSettings.defaults(),
              dir.resolve("work"),
              QUIET);
      if (!warmup) {
        repositoryLoad.add((System.nanoTime() - t) / 1e9);
        baseWithAdapter.add(repository.get(name).loadSeconds());
        adapterLoad.add(repository.get(ADAPTER).loadSeconds());
      }
    }
    ServedModel base = repository.get(name);
    ServedModel adapter = repository.get(ADAPTER);
    LlamaConfig config = base.model().config();
    result.put(
        "config",
        Map.of(
            "hidden", config.hiddenSize(),
            "layers", config.numHiddenLayers(),
            "parameters", config.parameterCount(),
            "adapterBytes", Files.size(adapterPath.resolve("adapter_model.safetensors"))));
    result.put("libtorchThreads", JniUtils.getNumThreads());
    Map<String, Object> load = new LinkedHashMap<>();
    load.put("baseAloneSeconds", stats(baseAlone));
    load.put("baseSeconds", stats(baseWithAdapter));
    load.put("adapterSeconds", stats(adapterLoad));
    load.put("baseAndAdapterSeconds", stats(repositoryLoad));
    result.put("load", load);

    try {
      Inference inference = new Inference(repository.tokenizer());
      Map<String, Map<String, Object>> rows = new LinkedHashMap<>();
      Map<String, Map<String, String>> expected = new LinkedHashMap<>();
      for (ServedModel m : List.of(base, adapter)) {
        String key = m.id().equals(name) ? "base" : "adapter";
        Run run = generator(m, inference, repository.tokenizer(), requests, maxTokens);
        Map<String, String> texts = new LinkedHashMap<>();
        run.samples().forEach(x -> texts.putIfAbsent(x.prompt(), x.text()));
        expected.put(m.id(), texts);
        rows.computeIfAbsent("generator", k -> new LinkedHashMap<>())
            .put(key, summary(run, maxTokens, texts));
        rows.computeIfAbsent("inference", k -> new LinkedHashMap<>())
            .put(key, summary(inference(m, inference, requests, maxTokens), maxTokens, texts));
      }
      for (int workers : List.of(1, 2)) {
        try (OpenAiServer server =
            new OpenAiServer(
                new OpenAiServer.Settings("127.0.0.1", 0, workers, 64, 1 << 20), QUIET)) {
          server.start();
          server.ready(repository);
          URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/completions");
          HttpClient http =
              HttpClient.newBuilder()
                  .version(HttpClient.Version.HTTP_1_1)
                  .connectTimeout(Duration.ofSeconds(10))
                  .build();
          for (ServedModel m : List.of(base, adapter)) {
            String key = m.id().equals(name) ? "base" : "adapter";
            if (workers == 1) {
              System.err.printf("  %s: %s one at a time%n", name, key);
              concurrent(http, uri, m.id(), 1, WARMUP, maxTokens);
              rows.computeIfAbsent("http_sequential", k -> new LinkedHashMap<>())
                  .put(
                      key,
                      summary(
                          concurrent(http, uri, m.id(), 1, requests, maxTokens),
                          maxTokens,
                          expected.get(m.id())));
            }
            System.err.printf("  %s: %s, %d clients, %d worker(s)%n", name, key, clients, workers);
            concurrent(http, uri, m.id(), clients, clients, maxTokens);
            int total = Math.max(clients, (requests + clients - 1) / clients * clients);
            rows.computeIfAbsent(
                    "http_"
                        + clients
                        + "_clients_"
                        + workers
                        + "_worker"
                        + (workers > 1 ? "s" : ""),
                    k -> new LinkedHashMap<>())
                .put(
                    key,
                    summary(
                        concurrent(http, uri, m.id(), clients, total, maxTokens),
                        maxTokens,
                        expected.get(m.id())));
          }
        }
      }
      result.put("rows", rows);
      result.put("ratios", ratios(rows, clients));
    } finally {
      repository.close();
    }
    return result;
  }

  /** The model alone: the same loop the server's worker runs, without HTTP or detokenisation. */
  private static Run generator(
      ServedModel m, Inference inference, TextTokenizer tokenizer, int requests, int maxTokens) {
    List<Sample> samples = new ArrayList<>();
    long wall = 0;
    for (int i = 0; i < WARMUP + requests; i++) {
      String text = PROMPTS.get(i % PROMPTS.size());
      long[] prompt = inference.completionPrompt(m.model(), text);
      long start = System.nanoTime();
      long[] first = {0};
      long[] ids =
          new Generator(m.model())
              .generate(
                  prompt,
                  Generator.Settings.greedy(maxTokens),
                  Set.of(),
                  (token, logits) -> {
                    if (first[0] == 0) {
                      first[0] = System.nanoTime();
                    }
                    return true;
                  });
      long end = System.nanoTime();
      if (i >= WARMUP) {
        wall += end - start;
        samples.add(
            new Sample(
                text,
                (first[0] - start) / 1e9,
                (end - start) / 1e9,
                ids.length,
                0,
                tokenizer.decode(ids)));
      }
    }
    return new Run(samples, wall / 1e9);
  }

  /**
   * What a server worker runs for a streamed request ({@link Inference#generate}: incremental
   * detokenisation, stop handling), with a sink that drops the text: the server without HTTP.
   */
  private static Run inference(ServedModel m, Inference inference, int requests, int maxTokens) {
    List<Sample> samples = new ArrayList<>();
    long wall = 0;
    GenerationParams params =
        new GenerationParams(m.id(), maxTokens, 0, 1, List.of(), 0, null, true, false);
    for (int i = 0; i < WARMUP + requests; i++) {
      String text = PROMPTS.get(i % PROMPTS.size());
      long start = System.nanoTime();
      long[] first = {0};
      int[] chunks = {0};
      Inference.Result result =
          inference.generate(
              m,
              inference.completionPrompt(m.model(), text),
              params,
              (delta, logprobs) -> {
                if (first[0] == 0) {
                  first[0] = System.nanoTime();
                }
                chunks[0]++;
              },
              () -> false);
      long end = System.nanoTime();
      if (i >= WARMUP) {
        wall += end - start;
        samples.add(
            new Sample(
                text,
                (first[0] - start) / 1e9,
                (end - start) / 1e9,
                result.completionTokens(),
                chunks[0],
                result.text()));
      }
    }
    return new Run(samples, wall / 1e9);
  }

  /**
   * {@code total} streamed requests from {@code clients} clients, each sending its next request
   * when the previous one finished; prompts in turn.
   */
  private static Run concurrent(
      HttpClient http, URI uri, String model, int clients, int total, int maxTokens)
      throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    try {
      long start = System.nanoTime();
      List<Future<List<Sample>>> futures = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        int client = c;
        futures.add(
            pool.submit(
                () -> {
                  List<Sample> mine = new ArrayList<>();
                  for (int i = client; i < total; i += clients) {
                    mine.add(stream(http, uri, model, PROMPTS.get(i % PROMPTS.size()), maxTokens));
                  }
                  return mine;
                }));
      }
      List<Sample> samples = new ArrayList<>();
      for (Future<List<Sample>> f : futures) {
        samples.addAll(f.get());
      }
      return new Run(samples, (System.nanoTime() - start) / 1e9);
    } finally {
      pool.shutdownNow();
    }
  }

  /** One streamed completion, read event by event as it arrives. */
  static Sample stream(HttpClient http, URI uri, String model, String prompt, int maxTokens)
      throws Exception {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("model", model);
    body.put("prompt", prompt);
    body.put("max_tokens", maxTokens);
    body.put("temperature", 0);
    body.put("stream", true);
    body.put("stream_options", Map.of("include_usage", true));
    HttpRequest request =
        HttpRequest.newBuilder(uri)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))
            .build();
    long start = System.nanoTime();
    HttpResponse<Stream<String>> response = http.send(request, HttpResponse.BodyHandlers.ofLines());
    double ttft = Double.NaN;
    int tokens = -1;
    int chunks = 0;
    boolean done = false;
    StringBuilder text = new StringBuilder();
    try (Stream<String> lines = response.body()) {
      if (response.statusCode() != 200) {
        throw new IllegalStateException(
            "HTTP " + response.statusCode() + ": " + String.join("\n", lines.toList()));
      }
      Iterator<String> it = lines.iterator();
      while (it.hasNext()) {
        String line = it.next();
        if (!line.startsWith("data: ")) {
          continue;
        }
        String data = line.substring("data: ".length());
        if (data.equals("[DONE]")) {
          done = true;
          break;
        }
        JsonNode event = JSON.readTree(data);
        if (event.has("error")) {
          throw new IllegalStateException("error in the stream: " + data);
        }
        JsonNode choices = event.path("choices");
        if (choices.size() > 0) {
          String delta = choices.get(0).path("text").asText("");
          if (!delta.isEmpty()) {
            if (Double.isNaN(ttft)) {
              ttft = (System.nanoTime() - start) / 1e9;
            }
            chunks++;
            text.append(delta);
          }
        }
        if (event.hasNonNull("usage")) {
          tokens = event.at("/usage/completion_tokens").asInt();
        }
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    if (!done || tokens < 0) {
      throw new IllegalStateException("the stream ended without usage or [DONE]");
    }
    return new Sample(prompt, ttft, seconds, tokens, chunks, text.toString());
  }

  /**
   * Figures of a run; {@code expected} (the in-process greedy text per prompt) checks that the
   * server streamed the same text.
   */
  private static Map<String, Object> summary(Run run, int maxTokens, Map<String, String> expected) {
    List<Sample> samples = run.samples();
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("requests", samples.size());
    int tokens = samples.stream().mapToInt(Sample::tokens).sum();
    s.put("completionTokensMin", samples.stream().mapToInt(Sample::tokens).min().orElse(0));
    s.put("completionTokensMax", samples.stream().mapToInt(Sample::tokens).max().orElse(0));
    s.put("allAtMaxTokens", samples.stream().allMatch(x -> x.tokens() == maxTokens));
    s.put("wallSeconds", round3(run.wallSeconds()));
    s.put("aggregateTokensPerSecond", round1(tokens / run.wallSeconds()));
    s.put("tokensPerSecond", stats(values(samples, Sample::tokensPerSecond)));
    s.put("decodeTokensPerSecond", stats(values(samples, Sample::decodeTokensPerSecond)));
    s.put("ttftMs", stats(values(samples, x -> x.ttft() * 1000)));
    s.put("requestMs", stats(values(samples, x -> x.seconds() * 1000)));
    s.put("textChunksMedian", median(values(samples, Sample::chunks)));
    s.put(
        "textsDifferingFromGenerator",
        samples.stream().filter(x -> !x.text().equals(expected.get(x.prompt()))).count());
    return s;
  }

  /** Server over model alone, adapter over base. */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> ratios(Map<String, Map<String, Object>> rows, int clients) {
    Map<String, Object> r = new LinkedHashMap<>();
    for (String key : List.of("base", "adapter")) {
      Map<String, Object> gen = (Map<String, Object>) rows.get("generator").get(key);
      Map<String, Object> seq = (Map<String, Object>) rows.get("http_sequential").get(key);
      r.put(
          key + "HttpOverGeneratorTokensPerSecond",
          round3(med(seq, "tokensPerSecond") / med(gen, "tokensPerSecond")));
      r.put(
          key + "InferenceOverGeneratorTokensPerSecond",
          round3(
              med((Map<String, Object>) rows.get("inference").get(key), "tokensPerSecond")
                  / med(gen, "tokensPerSecond")));
      r.put(key + "HttpMinusGeneratorTtftMs", round1(med(seq, "ttftMs") - med(gen, "ttftMs")));
    }
    for (String row : rows.keySet()) {
      Map<String, Object> b = (Map<String, Object>) rows.get(row).get("base");
      Map<String, Object> a = (Map<String, Object>) rows.get(row).get("adapter");
      r.put(
          "adapterOverBase_" + row,
          round3(
              ((Number) a.get("aggregateTokensPerSecond")).doubleValue()
                  / ((Number) b.get("aggregateTokensPerSecond")).doubleValue()));
    }
    return r;
  }

  @SuppressWarnings("unchecked")
  private static double med(Map<String, Object> row, String field) {
    return ((Number) ((Map<String, Object>) row.get(field)).get("median")).doubleValue();
  }

  @SuppressWarnings("unchecked")
  private static String table(List<Map<String, Object>> models, int clients) {
    StringBuilder t = new StringBuilder();
    for (Map<String, Object> m : models) {
      Map<String, Object> config = (Map<String, Object>) m.get("config");
      Map<String, Object> load = (Map<String, Object>) m.get("load");
      t.append(
          String.format(
              Locale.ROOT,
              "%n%s (%,d parameters, libtorch threads %s): load base %.3f s, adapter %.3f s"
                  + " (base alone %.3f s)%n",
              m.get("model"),
              ((Number) config.get("parameters")).longValue(),
              m.get("libtorchThreads"),
              med(load, "baseSeconds"),
              med(load, "adapterSeconds"),
              med(load, "baseAloneSeconds")));
      t.append(
          String.format(
              Locale.ROOT,
              "%-30s %-8s %10s %10s %10s %10s %10s %6s%n",
              "row",
              "model",
              "agg tok/s",
              "req tok/s",
              "TTFT p50",
              "TTFT p90",
              "req p50",
              "tokens"));
      Map<String, Map<String, Object>> rows = (Map<String, Map<String, Object>>) m.get("rows");
      rows.forEach(
          (row, byModel) ->
              byModel.forEach(
                  (key, v) -> {
                    Map<String, Object> s = (Map<String, Object>) v;
                    Map<String, Object> ttft = (Map<String, Object>) s.get("ttftMs");
                    t.append(
                        String.format(
                            Locale.ROOT,
                            "%-30s %-8s %10.1f %10.1f %8.1fms %8.1fms %8.1fms %3s-%s%n",
                            row,
                            key,
                            ((Number) s.get("aggregateTokensPerSecond")).doubleValue(),
                            med(s, "tokensPerSecond"),
                            ((Number) ttft.get("median")).doubleValue(),
                            ((Number) ttft.get("p90")).doubleValue(),
                            med(s, "requestMs"),
                            s.get("completionTokensMin"),
                            s.get("completionTokensMax")));
                  }));
      t.append("ratios: ").append(m.get("ratios")).append('\n');
    }
    return t.toString();
  }

  private static Map<String, Object> machine(int cores) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cores", cores);
    m.put("javaVersion", System.getProperty("java.version"));
    m.put("javaVm", System.getProperty("java.vm.name"));
    m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
    m.put("maxHeapMB", Runtime.getRuntime().maxMemory() >> 20);
    m.put(
        "loadAverageAtStart", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    try {
      m.put(
          "cpu",
          Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
              .filter(l -> l.startsWith("model name"))
              .map(l -> l.substring(l.indexOf(':') + 1).trim())
              .findFirst()
              .orElse("unknown"));
    } catch (Exception e) {
      m.put("cpu", "unknown");
    }
    return m;
  }

  private static List<Double> values(List<Sample> samples, ToDoubleFunction<Sample> f) {
    return samples.stream().map(s -> f.applyAsDouble(s)).toList();
  }

  private static Map<String, Object> stats(List<Double> values) {
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("median", round3(median(values)));
    s.put("p90", round3(percentile(values, 0.9)));
    s.put("min", round3(values.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN)));
    s.put("max", round3(values.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN)));
    return s;
  }

  private static double median(List<Double> values) {
    double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    if (v.length == 0) {
      return Double.NaN;
    }
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  /** Nearest-rank percentile. */
  private static double percentile(List<Double> values, double p) {
    double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    if (v.length == 0) {
      return Double.NaN;
    }
    return v[Math.max(0, (int) Math.ceil(p * v.length) - 1)];
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

  private ServeBenchmark() {}
}
