package io.kubetune.trainer.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.trainer.serve.ModelRepository.ServedModel;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The OpenAI-compatible HTTP API of serve mode on Vert.x Web (the HTTP layer Quarkus REST runs on,
 * used directly so the trainer jar stays a plain CLI). Model work runs on a fixed pool of workers
 * behind a bounded queue: a full queue answers 429 at once instead of piling up requests, and every
 * failure of a request becomes an error response, never a dead process.
 *
 * <p>Endpoints: {@code GET /v1/models}, {@code POST /v1/completions}, {@code POST
 * /v1/chat/completions} (both with server-sent events when {@code stream} is true), {@code POST
 * /v1/classify}, {@code POST /v1/feedback}, {@code GET /v1/variants}, {@code GET /health/live},
 * {@code GET /health/ready}, {@code GET /metrics}.
 */
public final class OpenAiServer implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * @param workers requests computed at the same time
   * @param queue requests waiting for a worker before the server answers 429
   * @param maxClassifyInputs the most inputs in one {@code /v1/classify} request
   * @param maxClassifyTokens the most tokens of all inputs of one {@code /v1/classify} request
   */
  public record Settings(
      String host,
      int port,
      int workers,
      int queue,
      int maxBodyBytes,
      int maxClassifyInputs,
      int maxClassifyTokens,
      int feedbackMemory) {
    /**
     * One classify request runs on one worker: these bound how long it can hold it while other
     * requests wait (20,000 short inputs held kubetune-mini's only worker for 22 s; 16,384 tokens
     * of long inputs took about 6 s on a busy 2-core machine, see docs/serving.md).
     */
    public static final int DEFAULT_MAX_CLASSIFY_INPUTS = 128;

    public static final int DEFAULT_MAX_CLASSIFY_TOKENS = 16_384;

    /** Settings with the default feedback memory ({@link RecentRequests#DEFAULT_CAPACITY}). */
    public Settings(
        String host,
        int port,
        int workers,
        int queue,
        int maxBodyBytes,
        int maxClassifyInputs,
        int maxClassifyTokens) {
      this(
          host,
          port,
          workers,
          queue,
          maxBodyBytes,
          maxClassifyInputs,
          maxClassifyTokens,
          RecentRequests.DEFAULT_CAPACITY);
    }

    /** Settings with the default classify limits. */
    public Settings(String host, int port, int workers, int queue, int maxBodyBytes) {
      this(
          host,
          port,
          workers,
          queue,
          maxBodyBytes,
          DEFAULT_MAX_CLASSIFY_INPUTS,
          DEFAULT_MAX_CLASSIFY_TOKENS);
    }

    public static Settings defaults(int port) {
      return new Settings("0.0.0.0", port, 1, 16, 1 << 20);
    }
  }

  private record Loaded(
      ModelRepository repository, Inference inference, Variants variants, RecentRequests recent) {}

  /** Response headers naming who answered: the variant, its adapter's digest and the pod. */
  public static final String VARIANT_HEADER = "KubeTune-Variant";

  public static final String DIGEST_HEADER = "KubeTune-Adapter-Digest";
  public static final String POD_HEADER = "KubeTune-Pod";

  private static final String POD = Objects.requireNonNullElse(System.getenv("HOSTNAME"), "");

  private final Settings settings;
  private final PrintStream log;
  private final ServerMetrics metrics = new ServerMetrics();
  private final Vertx vertx;
  private final ThreadPoolExecutor workers;
  private final AtomicInteger running = new AtomicInteger();
  private final Semaphore admitted;
  private final AtomicReference<Loaded> loaded = new AtomicReference<>();
  private final AtomicReference<String> loadFailure = new AtomicReference<>();
  private final AtomicBoolean terminating = new AtomicBoolean();
  private HttpServer server;

  public OpenAiServer(Settings settings, PrintStream log) {
    this.settings = settings;
    this.log = log;
    this.admitted = new Semaphore(settings.workers() + settings.queue());
    this.vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(1));
    AtomicInteger threadNumber = new AtomicInteger();
    this.workers =
        new ThreadPoolExecutor(
            settings.workers(),
            settings.workers(),
            0,
            TimeUnit.SECONDS,
            // Unbounded here: admission is the semaphore below, exact at any instant (a bounded
            // queue also counts tasks an idle worker has not picked up yet).
            new LinkedBlockingQueue<>(),
            r -> {
              Thread t = new Thread(r, "inference-" + threadNumber.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    metrics.queue(() -> workers.getQueue().size(), running::get);
  }

  /** Starts listening (liveness answers at once; readiness once {@link #ready} was called). */
  public int start() throws IOException {
    Router router = Router.router(vertx);
    router.route().handler(BodyHandler.create(false).setBodyLimit(settings.maxBodyBytes()));
    router
        .get("/health/live")
        .handler(ctx -> json(ctx, 200, JSON.createObjectNode().put("status", "UP")));
    router.get("/health/ready").handler(this::readiness);
    router
        .get("/metrics")
        .handler(
            ctx ->
                ctx.response()
                    .putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .end(metrics.scrape()));
    router.get("/v1/models").handler(this::models);
    // Ids may hold a slash (e.g. an org/name base): the rest of the path is the id.
    router.getWithRegex("/v1/models/(?<id>.+)").handler(this::model);
    router.post("/v1/completions").handler(ctx -> generate(ctx, false));
    router.post("/v1/chat/completions").handler(ctx -> generate(ctx, true));
    router.post("/v1/classify").handler(this::classify);
    router.post("/v1/feedback").handler(this::feedback);
    router.get("/v1/variants").handler(this::variants);
    router.errorHandler(
        404,
        ctx ->
            error(ctx, 404, "not_found", null, null, "no such endpoint: " + ctx.request().path()));
    router.errorHandler(
        405,
        ctx ->
            error(
                ctx,
                405,
                "method_not_allowed",
                null,
                null,
                ctx.request().method() + " is not allowed on " + ctx.request().path()));
    router.errorHandler(
        413,
        ctx ->
            error(
                ctx,
                413,
                "invalid_request_error",
                null,
                null,
                "the request body is over " + settings.maxBodyBytes() + " bytes"));
    router.errorHandler(
        500,
        ctx ->
            error(
                ctx,
                500,
                "internal_error",
                null,
                null,
                "internal error: " + String.valueOf(ctx.failure())));
    try {
      server =
          vertx
              .createHttpServer(
                  new HttpServerOptions().setHost(settings.host()).setPort(settings.port()))
              .requestHandler(router)
              .listen()
              .toCompletionStage()
              .toCompletableFuture()
              .get(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while binding port " + settings.port(), e);
    } catch (java.util.concurrent.ExecutionException | TimeoutException e) {
      throw new IOException(
          "cannot listen on " + settings.host() + ":" + settings.port() + ": " + e.getCause(), e);
    }
    return server.actualPort();
  }

  /** The models are loaded, with no canary: requests are served, /health/ready answers 200. */
  public void ready(ModelRepository repository) {
    ready(repository, new Variants(repository, Map.of(), Instant.now()));
  }

  /** The models are loaded and split into variants: requests are served. */
  public void ready(ModelRepository repository, Variants variants) {
    metrics.knownModels(
        repository.all().stream()
            .map(ServedModel::id)
            .collect(java.util.stream.Collectors.toSet()));
    variants.all().forEach(metrics::variant);
    loaded.set(
        new Loaded(
            repository,
            new Inference(repository.tokenizer()),
            variants,
            new RecentRequests(settings.feedbackMemory())));
  }

  /** Loading failed: readiness reports why (the process exits right after). */
  public void failed(String reason) {
    loadFailure.set(reason);
  }

  public int port() {
    return server.actualPort();
  }

  private void readiness(RoutingContext ctx) {
    Loaded state = loaded.get();
    ObjectNode body = JSON.createObjectNode();
    if (state != null && terminating.get()) {
      // Still answering requests that were routed here; no new ones, please.
      body.put("status", "DOWN");
      body.put("reason", "shutting down");
      json(ctx, 503, body);
      return;
    }
    if (state == null) {
      body.put("status", "DOWN");
      body.put("reason", loadFailure.get() == null ? "loading models" : loadFailure.get());
      json(ctx, 503, body);
      return;
    }
    body.put("status", "UP");
    ArrayNode models = body.putArray("models");
    state.repository().all().forEach(m -> models.add(m.id()));
    json(ctx, 200, body);
  }

  private void models(RoutingContext ctx) {
    Loaded state = loaded.get();
    if (state == null) {
      fail(ctx, "models", null, System.nanoTime(), ApiException.notReady());
      return;
    }
    ObjectNode body = JSON.createObjectNode().put("object", "list");
    ArrayNode data = body.putArray("data");
    for (ServedModel m : state.repository().all()) {
      data.add(modelEntry(state, m));
    }
    json(ctx, 200, body);
  }

  /** {@code GET /v1/models/{id}}: one model object as in the list, 404 for an unknown id. */
  private void model(RoutingContext ctx) {
    long start = System.nanoTime();
    try {
      Loaded state = requireLoaded();
      // Vert.x decodes the path parameter (%2F is a slash).
      json(ctx, 200, modelEntry(state, state.variants().model(ctx.pathParam("id"))));
    } catch (RuntimeException e) {
      fail(ctx, "models", null, start, e);
    }
  }

  private static ObjectNode modelEntry(Loaded state, ServedModel m) {
    String base = state.repository().baseId();
    ObjectNode entry = JSON.createObjectNode();
    entry.put("id", m.id());
    entry.put("object", "model");
    entry.put("created", m.created());
    entry.put("owned_by", "kubetune");
    entry.put("root", base);
    entry.put("parent", m.id().equals(base) ? null : base);
    entry.put("max_model_len", m.model().config().maxPositionEmbeddings());
    entry.put("kind", m.kind());
    entry.put("task", m.task().name().toLowerCase(Locale.ROOT));
    if (m.labels() != null) {
      ArrayNode labels = entry.putArray("labels");
      m.labels().forEach(labels::add);
    }
    if (m.digest() != null) {
      entry.put("sha256", m.digest());
    }
    return entry;
  }

  private void generate(RoutingContext ctx, boolean chat) {
    long start = System.nanoTime();
    String endpoint = chat ? "chat" : "completions";
    String modelId = null;
    try {
      JsonNode body = body(ctx);
      Loaded state = requireLoaded();
      RequestParser.Completion completion = chat ? null : RequestParser.completion(body);
      RequestParser.Chat chatRequest = chat ? RequestParser.chat(body) : null;
      GenerationParams params = chat ? chatRequest.params() : completion.params();
      modelId = params.model();
      Variants.Route route = state.variants().route(params.model());
      ServedModel served = route.served();
      Context context = vertx.getOrCreateContext();
      HttpServerResponse response = ctx.response();
      variantHeaders(response, route);
      AtomicBoolean gone = new AtomicBoolean();
      response.closeHandler(v -> gone.set(true));
      String id = ResponseIds.issue(chat ? "chatcmpl" : "cmpl", route.stats());
      long created = System.currentTimeMillis() / 1000;
      String m = modelId;
      String tag = served.id();
      submit(
          () -> {
            try {
              long[] prompt =
                  chat
                      ? state.inference().chatPrompt(served.model(), chatRequest.messages())
                      : completion.promptIds() != null
                          ? state
                              .inference()
                              .completionPrompt(served.model(), completion.promptIds())
                          : state.inference().completionPrompt(served.model(), completion.prompt());
              AtomicBoolean first = new AtomicBoolean(true);
              AtomicBoolean headerSent = new AtomicBoolean();
              // text_offset of the next streamed token: it continues across chunks.
              int[] textOffset = {0};
              Inference.Sink sink =
                  !params.stream()
                      ? null
                      : (text, logprobs) -> {
                        boolean isFirst = first.getAndSet(false);
                        if (isFirst) {
                          metrics.firstToken(tag, Duration.ofNanos(System.nanoTime() - start));
                        }
                        ObjectNode chunk =
                            chunk(
                                id,
                                created,
                                m,
                                chat,
                                text,
                                logprobs,
                                textOffset[0],
                                params,
                                null,
                                isFirst);
                        textOffset[0] += textLength(logprobs);
                        sendEvent(context, response, headerSent, chunk);
                      };
              if (params.stream()) {
                // Validate the prompt before committing to a 200 event stream.
                Inference.Result result =
                    state.inference().generate(served, prompt, params, sink, gone::get);
                ObjectNode last =
                    chunk(
                        id,
                        created,
                        m,
                        chat,
                        "",
                        List.of(),
                        textOffset[0],
                        params,
                        result,
                        first.get());
                sendEvent(context, response, headerSent, last);
                if (params.includeUsageInStream()) {
                  ObjectNode usage = streamBase(id, created, m, chat);
                  usage.putArray("choices");
                  usage.set("usage", usage(result));
                  sendEvent(context, response, headerSent, usage);
                }
                context.runOnContext(
                    v -> {
                      if (!response.ended()) {
                        response.end("data: [DONE]\n\n");
                      }
                    });
                metrics.tokens(tag, result.promptTokens(), result.completionTokens());
                answered(route, id, 200, start);
                metrics.request(endpoint, tag, 200, Duration.ofNanos(System.nanoTime() - start));
              } else {
                Inference.Result result =
                    state.inference().generate(served, prompt, params, null, gone::get);
                // No time-to-first-token here: the client sees nothing before the whole answer.
                metrics.tokens(tag, result.promptTokens(), result.completionTokens());
                ObjectNode out = complete(id, created, m, chat, result, params);
                answered(route, id, 200, start);
                context.runOnContext(v -> json(ctx, 200, out));
                metrics.request(endpoint, tag, 200, Duration.ofNanos(System.nanoTime() - start));
              }
            } catch (RuntimeException | Error e) {
              answered(route, null, statusOf(e), start);
              context.runOnContext(v -> fail(ctx, endpoint, tag, start, e));
            }
          });
    } catch (RuntimeException e) {
      fail(ctx, endpoint, modelId, start, e);
    }
  }

  private void classify(RoutingContext ctx) {
    long start = System.nanoTime();
    String modelId = null;
    try {
      JsonNode body = body(ctx);
      Loaded state = requireLoaded();
      RequestParser.Classify request = RequestParser.classify(body, settings.maxClassifyInputs());
      modelId = request.model();
      Variants.Route route = state.variants().route(request.model());
      ServedModel served = route.served();
      Context context = vertx.getOrCreateContext();
      variantHeaders(ctx.response(), route);
      String m = modelId;
      String tag = served.id();
      String id = ResponseIds.issue("clf", route.stats());
      submit(
          () -> {
            try {
              List<Inference.Classification> results =
                  state
                      .inference()
                      .classify(served, request.inputs(), settings.maxClassifyTokens());
              ObjectNode out = JSON.createObjectNode();
              out.put("id", id);
              out.put("object", "list");
              out.put("model", m);
              ArrayNode data = out.putArray("data");
              int tokens = 0;
              for (int i = 0; i < results.size(); i++) {
                Inference.Classification c = results.get(i);
                ObjectNode item = data.addObject();
                item.put("index", i);
                item.put("label", c.label());
                ObjectNode probs = item.putObject("probabilities");
                c.probabilities().forEach(probs::put);
                tokens += c.tokens();
              }
              out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
              metrics.tokens(tag, tokens, 0);
              answered(route, id, 200, start);
              context.runOnContext(v -> json(ctx, 200, out));
              metrics.request("classify", tag, 200, Duration.ofNanos(System.nanoTime() - start));
            } catch (RuntimeException | Error e) {
              answered(route, null, statusOf(e), start);
              context.runOnContext(v -> fail(ctx, "classify", tag, start, e));
            }
          });
    } catch (RuntimeException e) {
      fail(ctx, "classify", modelId, start, e);
    }
  }

  /**
   * A request a variant computed ended: counted for the variant, and (answered, with an id)
   * remembered for feedback.
   */
  private void answered(Variants.Route route, String id, int status, long start) {
    long nanos = System.nanoTime() - start;
    route.stats().answered(status, nanos);
    metrics.variantLatency(route.stats(), Duration.ofNanos(nanos));
    Loaded state = loaded.get();
    if (id != null && state != null) {
      state.recent().answered(id, route.stats());
    }
  }

  private static void variantHeaders(HttpServerResponse response, Variants.Route route) {
    response.putHeader(VARIANT_HEADER, route.variant().label());
    if (route.served().digest() != null) {
      response.putHeader(DIGEST_HEADER, route.served().digest());
    }
    if (!POD.isEmpty()) {
      response.putHeader(POD_HEADER, POD);
    }
  }

  /** The status a failure of a request answers with (as {@link #fail} writes it). */
  private static int statusOf(Throwable e) {
    if (e instanceof ApiException api) {
      return api.status();
    }
    return e instanceof io.kubetune.trainer.BadInputException ? 400 : 500;
  }

  /** {@code POST /v1/feedback}: a score and/or a correction for one answered request. */
  private void feedback(RoutingContext ctx) {
    long start = System.nanoTime();
    try {
      RequestParser.Feedback feedback = RequestParser.feedback(body(ctx));
      Loaded state = requireLoaded();
      Variants.Stats variant =
          state
              .recent()
              .feedback(
                  feedback.id(),
                  feedback.score(),
                  feedback.correction() != null,
                  state.variants().all());
      ObjectNode out = JSON.createObjectNode();
      out.put("id", feedback.id());
      out.put("object", "feedback");
      out.put("model", variant.model());
      out.put("variant", variant.variant().label());
      out.put("sha256", variant.digest());
      out.put("scores", variant.scores());
      putMean(out, "score_mean", variant.scoreMean());
      json(ctx, 200, out);
      metrics.request(
          "feedback", variant.model(), 200, Duration.ofNanos(System.nanoTime() - start));
    } catch (RuntimeException e) {
      fail(ctx, "feedback", null, start, e);
    }
  }

  /**
   * {@code GET /v1/variants}: what each variant of each model did on this pod since it became
   * ready, for the operator to sum over the pods and decide a canary. Facts only.
   */
  private void variants(RoutingContext ctx) {
    long start = System.nanoTime();
    try {
      Loaded state = requireLoaded();
      VariantsReport out = new VariantsReport();
      out.pod = POD.isEmpty() ? null : POD;
      for (Variants.Stats s : state.variants().all()) {
        VariantsReport.Variant v = new VariantsReport.Variant();
        v.model = s.model();
        v.variant = s.variant().label();
        v.sha256 = s.digest();
        v.weight = s.weight();
        v.since = s.since().toString();
        v.requests = s.requests();
        v.errors = s.errors();
        v.clientErrors = s.clientErrors();
        v.errorRate = s.errorRate();
        v.latencySecondsSum = s.latencySeconds();
        VariantsReport.Feedback f = new VariantsReport.Feedback();
        f.scores = s.scores();
        f.scoreSum = s.scoreSum();
        f.scoreMean = Double.isNaN(s.scoreMean()) ? null : s.scoreMean();
        f.recentScoreMean = Double.isNaN(s.recentScoreMean()) ? null : s.recentScoreMean();
        f.corrections = s.corrections();
        v.feedback = f;
        out.data.add(v);
      }
      json(ctx, 200, JSON.valueToTree(out));
    } catch (RuntimeException e) {
      fail(ctx, "variants", null, start, e);
    }
  }

  private static void putMean(ObjectNode node, String field, double mean) {
    if (Double.isNaN(mean)) {
      node.putNull(field);
    } else {
      node.put(field, mean);
    }
  }

  /** Requests running or waiting for a worker. */
  int busy() {
    return running.get() + workers.getQueue().size();
  }

  /** Runs model work on a worker; 429 when every worker is busy and the queue is full. */
  void submit(Runnable task) {
    if (!admitted.tryAcquire()) {
      throw ApiException.overloaded(settings.workers() + settings.queue());
    }
    try {
      workers.execute(
          () -> {
            running.incrementAndGet();
            try {
              task.run();
            } finally {
              running.decrementAndGet();
              admitted.release();
            }
          });
    } catch (RejectedExecutionException e) {
      admitted.release(); // shutting down
      throw ApiException.notReady();
    }
  }

  private Loaded requireLoaded() {
    Loaded state = loaded.get();
    if (state == null) {
      throw ApiException.notReady();
    }
    return state;
  }

  private static JsonNode body(RoutingContext ctx) {
    try {
      String text = ctx.body().asString();
      if (text == null || text.isBlank()) {
        throw ApiException.badRequest(null, "the request body must be a JSON object");
      }
      return JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw ApiException.badRequest(
          null, "the request body is not valid JSON: " + e.getOriginalMessage());
    }
  }

  private ObjectNode streamBase(String id, long created, String model, boolean chat) {
    ObjectNode chunk = JSON.createObjectNode();
    chunk.put("id", id);
    chunk.put("object", chat ? "chat.completion.chunk" : "text_completion");
    chunk.put("created", created);
    chunk.put("model", model);
    return chunk;
  }

  private ObjectNode chunk(
      String id,
      long created,
      String model,
      boolean chat,
      String text,
      List<Inference.TokenLogprob> logprobs,
      int textOffset,
      GenerationParams params,
      Inference.Result finished,
      boolean withRole) {
    ObjectNode chunk = streamBase(id, created, model, chat);
    ObjectNode choice = chunk.putArray("choices").addObject();
    choice.put("index", 0);
    if (chat) {
      ObjectNode delta = choice.putObject("delta");
      if (withRole) {
        delta.put("role", "assistant");
      }
      if (finished == null) {
        delta.put("content", text);
      }
    } else {
      choice.put("text", text);
    }
    if (params.logprobs() != null && !logprobs.isEmpty()) {
      choice.set("logprobs", logprobs(chat, logprobs, textOffset));
    } else {
      choice.putNull("logprobs");
    }
    if (finished == null) {
      choice.putNull("finish_reason");
    } else {
      choice.put("finish_reason", finished.finishReason());
    }
    return chunk;
  }

  private ObjectNode complete(
      String id,
      long created,
      String model,
      boolean chat,
      Inference.Result result,
      GenerationParams params) {
    ObjectNode out = JSON.createObjectNode();
    out.put("id", id);
    out.put("object", chat ? "chat.completion" : "text_completion");
    out.put("created", created);
    out.put("model", model);
    ObjectNode choice = out.putArray("choices").addObject();
    choice.put("index", 0);
    if (chat) {
      choice.putObject("message").put("role", "assistant").put("content", result.text());
    } else {
      choice.put("text", result.text());
    }
    if (params.logprobs() != null) {
      choice.set("logprobs", logprobs(chat, result.logprobs(), 0));
    } else {
      choice.putNull("logprobs");
    }
    choice.put("finish_reason", result.finishReason());
    out.set("usage", usage(result));
    return out;
  }

  private static ObjectNode usage(Inference.Result result) {
    return JSON.createObjectNode()
        .put("prompt_tokens", result.promptTokens())
        .put("completion_tokens", result.completionTokens())
        .put("total_tokens", result.promptTokens() + result.completionTokens());
  }

  /**
   * Chat: {@code {content: [{token, logprob, top_logprobs}]}}; completions: parallel lists, with
   * {@code text_offset} counted in characters of the completion from {@code firstOffset} (a stream
   * chunk starts where the previous one ended).
   */
  private static ObjectNode logprobs(
      boolean chat, List<Inference.TokenLogprob> tokens, int firstOffset) {
    ObjectNode node = JSON.createObjectNode();
    if (chat) {
      ArrayNode content = node.putArray("content");
      for (Inference.TokenLogprob t : tokens) {
        ObjectNode item = content.addObject();
        item.put("token", t.token());
        item.put("logprob", t.logprob());
        ArrayNode top = item.putArray("top_logprobs");
        t.top().forEach((token, lp) -> top.addObject().put("token", token).put("logprob", lp));
      }
      return node;
    }
    ArrayNode text = node.putArray("tokens");
    ArrayNode values = node.putArray("token_logprobs");
    ArrayNode top = node.putArray("top_logprobs");
    ArrayNode offsets = node.putArray("text_offset");
    int offset = firstOffset;
    for (Inference.TokenLogprob t : tokens) {
      text.add(t.token());
      values.add(t.logprob());
      ObjectNode alternatives = top.addObject();
      t.top().forEach(alternatives::put);
      offsets.add(offset);
      offset += t.token().length();
    }
    return node;
  }

  /** Characters the tokens' text_offset advances by: the length of each token's text. */
  private static int textLength(List<Inference.TokenLogprob> tokens) {
    int n = 0;
    for (Inference.TokenLogprob t : tokens) {
      n += t.token().length();
    }
    return n;
  }

  /** Writes one server-sent event on the event loop, with the SSE headers before the first. */
  private static void sendEvent(
      Context context, HttpServerResponse response, AtomicBoolean headerSent, ObjectNode event) {
    String line;
    try {
      line = "data: " + JSON.writeValueAsString(event) + "\n\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    boolean first = !headerSent.getAndSet(true);
    context.runOnContext(
        v -> {
          if (response.ended() || response.closed()) {
            return;
          }
          if (first) {
            response
                .setStatusCode(200)
                .setChunked(true)
                .putHeader("Content-Type", "text/event-stream; charset=utf-8")
                .putHeader("Cache-Control", "no-cache");
          }
          response.write(line);
        });
  }

  /** Answers an error: 4xx for the client's mistakes, 500 (logged) for ours. */
  private void fail(RoutingContext ctx, String endpoint, String model, long start, Throwable e) {
    if (e instanceof ApiException api) {
      error(ctx, api.status(), api.type(), api.param(), api.code(), api.getMessage());
    } else if (e instanceof io.kubetune.trainer.BadInputException bad) {
      error(ctx, 400, "invalid_request_error", null, null, bad.getMessage());
    } else {
      log.println("error: request to " + endpoint + " failed: " + e);
      error(ctx, 500, "internal_error", null, null, "internal error: " + e);
    }
    metrics.request(
        endpoint,
        model,
        ctx.response().getStatusCode(),
        Duration.ofNanos(System.nanoTime() - start));
  }

  private static void error(
      RoutingContext ctx, int status, String type, String param, String code, String message) {
    HttpServerResponse response = ctx.response();
    if (response.ended() || response.closed()) {
      return;
    }
    ObjectNode error = JSON.createObjectNode();
    ObjectNode inner = error.putObject("error");
    inner.put("message", message);
    inner.put("type", type);
    inner.put("param", param);
    inner.put("code", code);
    if (response.headWritten()) {
      // Mid-stream: the status is already 200; report in the stream and close it.
      response.write("data: " + error + "\n\n");
      response.end("data: [DONE]\n\n");
      return;
    }
    if (status == 429) {
      response.putHeader("Retry-After", "1");
    }
    json(ctx, status, error);
  }

  private static void json(RoutingContext ctx, int status, JsonNode body) {
    HttpServerResponse response = ctx.response();
    if (response.ended() || response.closed()) {
      return;
    }
    response
        .setStatusCode(status)
        .putHeader("Content-Type", "application/json")
        .end(body.toString());
  }

  /** Stops accepting requests, lets running ones finish for up to {@code drain}, then stops. */
  public void close(Duration drain) {
    close(Duration.ZERO, drain);
  }

  /**
   * Shuts down without failing requests that are already on their way: for {@code delay}, readiness
   * answers 503 (so the Service's endpoints drop this pod) while requests are still served, as
   * Kubernetes removes a terminating pod from the endpoints only after SIGTERM; then it stops
   * accepting requests and lets running ones finish for up to {@code drain}.
   */
  public void close(Duration delay, Duration drain) {
    terminating.set(true);
    if (!delay.isZero() && loaded.get() != null) {
      try {
        Thread.sleep(delay.toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    loaded.set(null);
    workers.shutdown();
    try {
      workers.awaitTermination(drain.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    workers.shutdownNow();
    try {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    } catch (Exception e) {
      log.println("warning: HTTP server did not stop cleanly: " + e);
    }
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(5));
  }
}
