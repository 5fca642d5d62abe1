package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.StorageUri;
import io.kubetune.api.TrainerLayout;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.Names;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.reconciler.FineTuneJobReconciler;
import io.kubetune.operator.status.Conditions;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Local mode: the KubeTune operator, an embedded Kubernetes API and a local pod runner in one
 * process, so a FineTuneJob YAML can be tried on a laptop without a cluster.
 *
 * <pre>
 * bin/kubetune local [--clean] [--steps N] [FILE.yaml]
 * </pre>
 */
public final class KubeTuneLocal {
  static final String DEFAULT_EXAMPLE = "examples/quickstart.yaml";

  /**
   * The PVC name whose contents are the repository's examples/ folder in local mode, so the
   * quick-start needs no upload. Every other claim is a folder under .kubetune/pvc/.
   */
  static final String EXAMPLES_CLAIM = "kubetune-examples";

  /** Lines the operator asks for when it reads a trainer log (TrainerLogs.TAIL_LINES). */
  static final int LOG_TAIL_LINES = 200;

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  /** Options of one local run. */
  public record Options(
      Path file,
      Integer steps,
      boolean clean,
      Path repoRoot,
      Path stateDir,
      boolean keepServing,
      boolean cluster) {
    public Options(Path file, Integer steps, boolean clean, Path repoRoot, Path stateDir) {
      this(file, steps, clean, repoRoot, stateDir, false, false);
    }

    Options(
        Path file,
        Integer steps,
        boolean clean,
        Path repoRoot,
        Path stateDir,
        boolean keepServing) {
      this(file, steps, clean, repoRoot, stateDir, keepServing, false);
    }
  }

  /**
   * Result of one local run.
   *
   * @param exampleResponse the served adapter's answer to the example request, or null
   */
  public record Result(
      int exitCode, FineTuneJob finalState, Path outputDir, String exampleResponse) {
    Result(int exitCode, FineTuneJob finalState, Path outputDir) {
      this(exitCode, finalState, outputDir, null);
    }
  }

  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("error: " + e.getMessage());
      System.err.println(
          "usage: kubetune local [--clean] [--steps N] [--keep-serving] [--cluster] [FILE.yaml]");
      System.exit(2);
      return;
    }
    Result result =
        options.cluster()
            ? ClusterLocalMode.main(options, System.out, System.console() != null)
            : run(options, System.out, System.console() != null, null);
    System.exit(result.exitCode());
  }

  static Options parse(String[] args) {
    Path root = repoRoot();
    Path file = null;
    Integer steps = null;
    boolean clean = false;
    boolean keepServing = false;
    boolean cluster = false;
    List<String> rest = new ArrayList<>(List.of(args));
    if (!rest.isEmpty() && rest.get(0).equals("local")) {
      rest.remove(0);
    }
    for (int i = 0; i < rest.size(); i++) {
      String arg = rest.get(i);
      switch (arg) {
        case "--clean" -> clean = true;
        case "--keep-serving" -> keepServing = true;
        case "--cluster" -> cluster = true;
        case "--steps" -> {
          if (i + 1 >= rest.size()) {
            throw new IllegalArgumentException("--steps needs a number, e.g. --steps 20");
          }
          try {
            steps = Integer.parseInt(rest.get(++i));
          } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                "--steps needs a positive number, got " + rest.get(i));
          }
          if (steps < 1) {
            throw new IllegalArgumentException("--steps needs a positive number, got " + steps);
          }
        }
        default -> {
          if (arg.startsWith("-")) {
            throw new IllegalArgumentException("unknown option " + arg);
          }
          if (file != null) {
            throw new IllegalArgumentException(
                "only one FineTuneJob file, got " + file + " and " + arg);
          }
          file = Path.of(arg);
        }
      }
    }
    if (file == null) {
      file = root.resolve(DEFAULT_EXAMPLE);
    }
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("no such file: " + file);
    }
    if (clean && cluster) {
      throw new IllegalArgumentException(
          "--clean wipes .kubetune/, which holds the running control plane with --cluster; run"
              + " ./kubetune cluster stop and remove .kubetune/ yourself, or drop --clean");
    }
    return new Options(file, steps, clean, root, root.resolve(".kubetune"), keepServing, cluster);
  }

  /** Runs one FineTuneJob to the end. {@code onRunner} (tests) sees the pod runner once started. */
  static Result run(
      Options options,
      PrintStream out,
      boolean interactive,
      java.util.function.Consumer<LocalPodRunner> onRunner)
      throws Exception {
    return run(options, out, interactive, onRunner, null);
  }

  /**
   * What a test does once the job is served, with the operator still reconciling: e.g. update the
   * FineTuneJob (a retrain) and watch the rollout while sending requests.
   */
  @FunctionalInterface
  interface WhileServing {
    void run(KubernetesClient client, LocalServingRunner serving, FineTuneJob served)
        throws Exception;
  }

  /**
   * As {@link #run(Options, PrintStream, boolean, java.util.function.Consumer)}; {@code
   * whileServing} (tests) runs once the job is served, before the operator stops; the result's
   * final state is then awaited again.
   */
  static Result run(
      Options options,
      PrintStream out,
      boolean interactive,
      java.util.function.Consumer<LocalPodRunner> onRunner,
      WhileServing whileServing)
      throws Exception {
    Path root = options.repoRoot();
    Path state = options.stateDir();
    if (options.clean()) {
      deleteRecursively(state);
      out.println("wiped " + state);
    }
    FineTuneJob job = prepareJob(options, out);
    if (job == null) {
      return new Result(2, null, null);
    }
    Path launcher = root.resolve(TRAINER_LAUNCHER);
    String name = job.getMetadata().getName();
    String namespace = job.getMetadata().getNamespace();

    Map<String, Path> claims = claimFolders(root);

    out.println("KubeTune local mode (a development aid: embedded API server + local pod runner)");
    out.println("  FineTuneJob  " + options.file());
    out.println("  state        " + state);
    ProgressView progress = new ProgressView(out, interactive);
    Instant started = Instant.now();
    EmbeddedObjectStore s3 = startObjectStoreIfNeeded(job, root, state, out);
    try (s3;
        EmbeddedApiServer api = new EmbeddedApiServer();
        LocalPodRunner runner =
            new LocalPodRunner(
                api.client(),
                state,
                claims,
                launcher,
                progress,
                (ns, pod, logFile, rewrite) ->
                    api.servePodLog(
                        ns,
                        pod,
                        LOG_TAIL_LINES,
                        () -> rewrite.apply(tail(logFile, LOG_TAIL_LINES))));
        LocalServingRunner serving =
            new LocalServingRunner(api.client(), state, claims, launcher)) {
      out.println(
          "  API server   " + api.url() + " (Fabric8 mock, CRUD mode; kubectl cannot use it)");
      api.installCrd(root.resolve("crds/finetunejobs.kubetune.io-v1.yml"));
      api.createNamespace(namespace);
      if (s3 != null) {
        api.createSecret(
            namespace,
            job.getSpec().storage.credentialsSecret,
            Map.of(
                "AWS_ACCESS_KEY_ID", EmbeddedObjectStore.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY", EmbeddedObjectStore.SECRET_KEY));
      }

      Operator operator =
          new Operator(
              o ->
                  o.withKubernetesClient(api.client())
                      .withUseSSAToPatchPrimaryResource(false)
                      .withSSABasedCreateUpdateMatchForDependentResources(false)
                      .withCloseClientOnStop(false));
      operator.register(
          new FineTuneJobReconciler(
              OperatorSettings.defaults(),
              new FineTuneJobMetrics(new SimpleMeterRegistry()),
              serving::variants));
      operator.start();
      Runtime.getRuntime().addShutdownHook(new Thread(runner::close));
      Runtime.getRuntime().addShutdownHook(new Thread(serving::close));
      runner.start();
      serving.start();
      if (onRunner != null) {
        onRunner.accept(runner);
      }

      takeOverOwnCheckpoints(job, claims, state, s3, out);
      api.client().resource(job).create();
      out.println("applied finetunejob/" + name + " in namespace " + namespace);

      FineTuneJob current =
          awaitOutcome(
              api.client(),
              job,
              progress,
              out,
              interactive,
              runner::fatalError,
              serving::lastError);
      boolean served = isServing(current);
      String exampleResponse =
          served
              ? ServingExample.run(
                  current,
                  serving.endpointOf(namespace, Names.servingService(current)),
                  claims,
                  root,
                  out)
              : null;
      // While it serves, a retrain rolls out as a canary (serving.canary): show it as it goes.
      try (CanaryProgress canaries =
          served ? CanaryProgress.start(api.client(), namespace, name, out) : null) {
        if (served && whileServing != null) {
          whileServing.run(api.client(), serving, current);
          // Read the outcome once it has settled, as after the first rollout: right after a
          // canary's rollback the Deployment still counts the canary's pods until they are gone,
          // so Serving is False (and the phase Succeeded) for a moment while the stable pods serve.
          current =
              awaitOutcome(
                  api.client(),
                  job,
                  progress,
                  out,
                  interactive,
                  runner::fatalError,
                  serving::lastError);
        }
        if (served && options.keepServing()) {
          out.println();
          out.println(
              "serving at "
                  + serving.endpointOf(namespace, Names.servingService(current)).orElse("?")
                  + " until Ctrl-C (the operator keeps reconciling)");
          Thread.currentThread().join();
        }
      }
      operator.stop();

      return finish(
          job, current, claims, state, s3, progress, out, started, served, exampleResponse);
    }
  }

  static final String TRAINER_LAUNCHER = "trainer-image/bin/trainer";

  /**
   * Checks that the trainer is built and reads the FineTuneJob (namespace defaulted, --steps
   * applied); prints what is wrong and returns null when it cannot run.
   */
  static FineTuneJob prepareJob(Options options, PrintStream out) throws IOException {
    Path root = options.repoRoot();
    Files.createDirectories(options.stateDir());
    if (!Files.isRegularFile(root.resolve("trainer-image/target/kubetune-trainer.jar"))) {
      out.println(
          "error: the trainer is not built; run: mvn -B -q install -DskipTests (see README)");
      return null;
    }
    FineTuneJob job = readFineTuneJob(options.file(), root, out);
    if (job == null) {
      return null;
    }
    if (job.getMetadata().getNamespace() == null) {
      job.getMetadata().setNamespace("default");
    }
    if (options.steps() != null) {
      // A local override for quick runs; the YAML file itself is not changed.
      if (job.getSpec().hyperparameters == null) {
        job.getSpec().hyperparameters = new HyperparametersSpec();
      }
      job.getSpec().hyperparameters.epochs = null;
      job.getSpec().hyperparameters.maxSteps = options.steps();
      Integer warmup = job.getSpec().hyperparameters.warmupSteps;
      if (warmup != null && warmup >= options.steps()) {
        job.getSpec().hyperparameters.warmupSteps = options.steps() / 10;
        out.println(
            "note: --steps "
                + options.steps()
                + " also lowers warmupSteps from "
                + warmup
                + " to "
                + options.steps() / 10);
      }
    }
    return job;
  }

  /** The claims whose contents are local folders: the examples claim is examples/. */
  public static Map<String, Path> claimFolders(Path root) {
    Map<String, Path> claims = new LinkedHashMap<>();
    claims.put(EXAMPLES_CLAIM, root.resolve("examples"));
    return claims;
  }

  /**
   * Follows the FineTuneJob until it is done (terminal, and served or refused serving when serving
   * is enabled) or local mode must give up; prints phase changes. Returns its last state.
   *
   * @param fatalError a problem the pods' runner cannot get past, or null
   * @param servingError the serving pods' last start-up error, or null
   */
  static FineTuneJob awaitOutcome(
      KubernetesClient client,
      FineTuneJob job,
      ProgressView progress,
      PrintStream out,
      boolean interactive,
      Supplier<String> fatalError,
      Supplier<String> servingError)
      throws InterruptedException {
    String name = job.getMetadata().getName();
    String namespace = job.getMetadata().getNamespace();
    boolean servingWanted = servingEnabled(job);
    FineTuneJob current = null;
    Phase shown = null;
    Instant applied = Instant.now();
    Instant trainingDone = null;
    Instant failingSince = null;
    while (true) {
      current = client.resources(FineTuneJob.class).inNamespace(namespace).withName(name).get();
      FineTuneJobStatus status = current == null ? null : current.getStatus();
      if (status != null && status.phase != shown) {
        shown = status.phase;
        if (!(interactive && progress.lastProgress() != null)) {
          out.println(
              "phase " + status.phase + (status.message != null ? ": " + status.message : ""));
        }
      }
      if (status != null && status.phase != null && status.phase.isTerminal()) {
        if (!servingWanted || status.phase != Phase.Succeeded) {
          break;
        }
        // Training succeeded: wait for the gate and the rollout, as `kubectl wait
        // --for=jsonpath='{.status.phase}'=Serving` would.
        String servingVerdict = servingVerdict(status);
        if (servingVerdict != null) {
          break;
        }
        if (trainingDone == null) {
          trainingDone = Instant.now();
          out.println("training succeeded; waiting for the serving rollout");
        }
        if (Duration.between(trainingDone, Instant.now()).compareTo(SERVING_WAIT) > 0) {
          out.println(
              "error: the serving Deployment did not become ready within "
                  + SERVING_WAIT.toSeconds()
                  + " s"
                  + (servingError.get() == null ? "" : ": " + servingError.get()));
          break;
        }
      }
      if (fatalError.get() != null) {
        out.println("error: " + fatalError.get());
        break;
      }
      if ((status == null || status.phase == null)
          && Duration.between(applied, Instant.now()).toSeconds() > 60) {
        out.println("error: the operator did not report a phase within 60 s");
        break;
      }
      // A reconcile that keeps failing is retried by the operator; here nobody else would
      // notice, so stop once it persisted for a while.
      Optional<String> reconcileError =
          status == null || !Conditions.isTrue(status.conditions, Conditions.RECONCILE_ERROR)
              ? Optional.empty()
              : Conditions.findMessage(status.conditions, Conditions.RECONCILE_ERROR);
      if (reconcileError.isEmpty()) {
        failingSince = null;
      } else if (failingSince == null) {
        failingSince = Instant.now();
      } else if (Duration.between(failingSince, Instant.now()).compareTo(RECONCILE_ERROR_WAIT)
          > 0) {
        out.println("error: the operator cannot reconcile the job: " + reconcileError.get());
        break;
      }
      Thread.sleep(250);
    }
    return current;
  }

  /** Copies the result out of the object store if needed, prints the summary, gives the result. */
  static Result finish(
      FineTuneJob job,
      FineTuneJob current,
      Map<String, Path> claims,
      Path state,
      EmbeddedObjectStore s3,
      ProgressView progress,
      PrintStream out,
      Instant started,
      boolean served,
      String exampleResponse)
      throws IOException {
    Path outputDir = outputDir(current, claims, state);
    String exported = exportUri(current);
    if (s3 != null
        && exported != null
        && !StorageUri.parse(exported).isPvc()
        && current.getStatus().phase.isTerminal()
        && current.getStatus().phase != Phase.Failed) {
      // The result is in the embedded object store: copy it out for the summary.
      StorageUri export = StorageUri.parse(exported);
      // output/<name>/final/<trainingRevision>/, as below checkpoints.uri.
      outputDir =
          state
              .resolve("output")
              .resolve(job.getMetadata().getName())
              .resolve(TrainerLayout.FINAL_FOLDER)
              .resolve(Path.of(export.path()).getFileName().toString());
      s3.download(export.authority(), export.path(), outputDir);
    }
    printSummary(out, current, progress, outputDir, Duration.between(started, Instant.now()));
    boolean ok = succeeded(current, servingEnabled(job)) && (!served || exampleResponse != null);
    return new Result(ok ? 0 : 1, current, outputDir, exampleResponse);
  }

  /** How long local mode lets a reconcile keep failing (the operator retries) before it stops. */
  static final Duration RECONCILE_ERROR_WAIT = Duration.ofSeconds(15);

  /** How long local mode waits for the serving rollout after training succeeded. */
  static final Duration SERVING_WAIT = Duration.ofMinutes(3);

  /** The FineTuneJob reached phase Serving (a ready replica serves its adapter). */
  static boolean isServing(FineTuneJob job) {
    return job != null && job.getStatus() != null && job.getStatus().phase == Phase.Serving;
  }

  static boolean servingEnabled(FineTuneJob job) {
    return job.getSpec().serving != null && Boolean.TRUE.equals(job.getSpec().serving.enabled);
  }

  /**
   * Why a succeeded FineTuneJob will not get further towards Serving (the gate failed, or the
   * rollout failed), or null while it still may.
   */
  static String servingVerdict(FineTuneJobStatus status) {
    Condition promoted = find(status, "Promoted");
    if (promoted != null && "False".equals(promoted.getStatus())) {
      return promoted.getReason();
    }
    Condition serving = find(status, "Serving");
    if (serving != null && "RolloutFailed".equals(serving.getReason())) {
      return "RolloutFailed";
    }
    return null;
  }

  /**
   * Whether the run reached its goal: Serving; or Succeeded without serving, or with a quality gate
   * that decided against promotion (the job's answer, not a failure).
   */
  static boolean succeeded(FineTuneJob job, boolean servingWanted) {
    if (job == null || job.getStatus() == null) {
      return false;
    }
    FineTuneJobStatus status = job.getStatus();
    if (status.phase == Phase.Serving) {
      return true;
    }
    if (status.phase != Phase.Succeeded) {
      return false;
    }
    String verdict = servingVerdict(status);
    return !servingWanted || (verdict != null && !"RolloutFailed".equals(verdict));
  }

  private static Condition find(FineTuneJobStatus status, String type) {
    return status.conditions == null
        ? null
        : status.conditions.stream().filter(c -> type.equals(c.getType())).findFirst().orElse(null);
  }

  /**
   * Reads the YAML file and checks it as an API server with the CRD installed would; prints what is
   * wrong and returns null if it would be rejected.
   */
  private static final java.util.regex.Pattern DNS_LABEL =
      java.util.regex.Pattern.compile("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$");

  static FineTuneJob readFineTuneJob(Path file, Path root, PrintStream out) throws IOException {
    JsonNode doc;
    try {
      List<JsonNode> docs =
          YAML.readValues(YAML.getFactory().createParser(file.toFile()), JsonNode.class).readAll();
      docs = docs.stream().filter(d -> d != null && !d.isNull() && !d.isMissingNode()).toList();
      if (docs.size() > 1) {
        out.println(
            "error: "
                + file
                + " holds "
                + docs.size()
                + " YAML documents; local mode runs one FineTuneJob per file: split it");
        return null;
      }
      doc = docs.isEmpty() ? null : docs.get(0);
    } catch (IOException e) {
      out.println(
          "error: "
              + file
              + " is not valid YAML: "
              + e.getMessage().lines().findFirst().orElse(""));
      return null;
    }
    if (doc == null
        || !FineTuneJob.KIND.equals(doc.path("kind").asText())
        || !FineTuneJob.API_VERSION.equals(doc.path("apiVersion").asText())) {
      out.println(
          "error: "
              + file
              + " is not a FineTuneJob (apiVersion "
              + FineTuneJob.API_VERSION
              + ", kind "
              + FineTuneJob.KIND
              + "); see examples/quickstart.yaml");
      return null;
    }
    if (!doc.path("spec").isObject()) {
      out.println(
          "error: "
              + file
              + " has no spec; add baseModel, dataset, method and checkpoints (see"
              + " examples/quickstart.yaml)");
      return null;
    }
    String name = doc.path("metadata").path("name").asText("");
    if (!DNS_LABEL.matcher(name).matches()) {
      out.println(
          "error: "
              + file
              + ": metadata.name '"
              + name
              + "' is not a valid name; use at most 63 lower-case letters, digits and '-',"
              + " starting and ending with a letter or digit");
      return null;
    }
    CrdSchema crd = new CrdSchema(root.resolve("crds/finetunejobs.kubetune.io-v1.yml"));
    List<String> errors = new ArrayList<>(crd.errors(doc));
    errors.addAll(crd.unknownFields(doc));
    if (errors.isEmpty()) {
      // CEL rules assume a structurally valid object, as on an API server.
      errors.addAll(crd.celErrors(doc));
    }
    if (!errors.isEmpty()) {
      out.println("error: " + file + " would be rejected by the API server:");
      errors.forEach(e -> out.println("  " + e));
      return null;
    }
    return YAML.treeToValue(doc, FineTuneJob.class);
  }

  /**
   * For a FineTuneJob with s3:// URIs: starts the embedded S3-compatible server, points the
   * (in-memory copy of the) FineTuneJob at it, creates the buckets, and uploads what lives under
   * the {@value #EXAMPLES_CLAIM} bucket from this repository's examples/ folder. Returns null when
   * no URI is s3://.
   */
  static EmbeddedObjectStore startObjectStoreIfNeeded(
      FineTuneJob job, Path root, Path state, PrintStream out) throws Exception {
    var spec = job.getSpec();
    List<String> uris = new ArrayList<>();
    for (String uri :
        new String[] {
          spec.baseModel.uri, spec.dataset.train, spec.dataset.validation, spec.checkpoints.uri
        }) {
      if (uri != null && uri.startsWith("s3://")) {
        uris.add(uri);
      }
    }
    if (uris.isEmpty()) {
      return null;
    }
    if (spec.storage == null) {
      spec.storage = new io.kubetune.api.v1alpha1.StorageSpec();
    }
    int port = localPort(spec.storage.endpoint);
    EmbeddedObjectStore s3 = new EmbeddedObjectStore(state.resolve("s3"), port);
    String endpoint = s3.endpoint().toString();
    if (!endpoint.equals(spec.storage.endpoint)) {
      out.println(
          "note: s3:// URIs are served by an embedded S3 server at "
              + endpoint
              + " (spec.storage.endpoint "
              + spec.storage.endpoint
              + " is overridden locally)");
    }
    spec.storage.endpoint = endpoint;
    spec.storage.pathStyle = true;
    if (spec.storage.credentialsSecret == null) {
      spec.storage.credentialsSecret = "kubetune-local-s3";
    }
    out.println(
        "  S3 server    " + endpoint + " (S3Proxy, files under " + state.resolve("s3") + ")");
    for (String uri : uris) {
      StorageUri location = StorageUri.parse(uri);
      s3.ensureBucket(location.authority());
      if (EXAMPLES_CLAIM.equals(location.authority())) {
        Path source = root.resolve("examples").resolve(location.path());
        if (Files.exists(source)) {
          s3.upload(source, location.authority(), location.path());
        }
      }
    }
    return s3;
  }

  /** The port of an http://127.0.0.1:PORT or http://localhost:PORT endpoint, else 0 (any). */
  static int localPort(String endpoint) {
    if (endpoint == null) {
      return 0;
    }
    java.net.URI uri = java.net.URI.create(endpoint);
    boolean local = "127.0.0.1".equals(uri.getHost()) || "localhost".equals(uri.getHost());
    return local && uri.getPort() > 0 ? uri.getPort() : 0;
  }

  /**
   * Running the same FineTuneJob (namespace/name) again resumes its checkpoints, but the embedded
   * API server gives it a new uid each run, and the trainer refuses a checkpoints location another
   * uid owns ({@code owner.json}). Running the same file again is the deliberate take-over, so the
   * marker of this namespace/name is removed; a marker of another job is left for the trainer to
   * refuse.
   */
  static void takeOverOwnCheckpoints(
      FineTuneJob job,
      Map<String, Path> claims,
      Path state,
      EmbeddedObjectStore s3,
      PrintStream out)
      throws IOException {
    StorageUri location = StorageUri.parse(job.getSpec().checkpoints.uri).asFolder();
    String key = location.path() + TrainerLayout.OWNER_MARKER;
    byte[] marker;
    Path file = null;
    if (location.isPvc()) {
      String claim = location.authority();
      file =
          claims
              .getOrDefault(claim, state.resolve("pvc").resolve(claim))
              .resolve(location.path())
              .resolve(TrainerLayout.OWNER_MARKER);
      marker = Files.exists(file) ? Files.readAllBytes(file) : null;
    } else {
      marker = s3 == null ? null : s3.readOrNull(location.authority(), key);
    }
    if (marker == null) {
      return;
    }
    JsonNode owner = YAML.readTree(marker);
    if (!job.getMetadata().getNamespace().equals(owner.path("namespace").asText())
        || !job.getMetadata().getName().equals(owner.path("name").asText())) {
      return;
    }
    if (file != null) {
      Files.delete(file);
    } else {
      s3.delete(location.authority(), key);
    }
    out.println("  checkpoints  " + location + " (resuming this FineTuneJob's earlier local run)");
  }

  /**
   * Where the latest training run exported its result, as status.adapter.uri names it
   * (checkpoints.uri + final/&lt;trainingRevision&gt;/), or null before anything was exported.
   */
  static String exportUri(FineTuneJob job) {
    return job == null || job.getStatus() == null || job.getStatus().adapter == null
        ? null
        : job.getStatus().adapter.uri;
  }

  /** {@link #exportUri} as a local folder when it is on a pvc:// claim, else null. */
  static Path outputDir(FineTuneJob job, Map<String, Path> claims, Path state) {
    String uri = exportUri(job);
    if (uri == null) {
      return null;
    }
    StorageUri export = StorageUri.parse(uri);
    if (!export.isPvc()) {
      return null;
    }
    String claim = export.authority();
    Path base = claims.getOrDefault(claim, state.resolve("pvc").resolve(claim));
    return base.resolve(export.path());
  }

  static void printSummary(
      PrintStream out, FineTuneJob job, ProgressView progress, Path outputDir, Duration took) {
    out.println();
    if (job == null || job.getStatus() == null) {
      out.println("no status");
      return;
    }
    FineTuneJobStatus s = job.getStatus();
    // PROGRESS and LOSS come from the FineTuneJob status, which the operator fills from the
    // trainer's log (pods/log), exactly as on a cluster.
    String progressText =
        s.progress == null || s.progress.summary == null ? "" : s.progress.summary;
    String loss = s.progress == null || s.progress.loss == null ? "" : s.progress.loss.toString();
    out.println("$ kubectl get ftj -o wide   (as it would show)");
    out.printf(
        Locale.ROOT,
        "%-22s %-10s %-14s %-8s %-6s %-8s %-24s %s%n",
        "NAME",
        "PHASE",
        "PROGRESS",
        "LOSS",
        "AGE",
        "METHOD",
        "JOB",
        "MESSAGE");
    out.printf(
        Locale.ROOT,
        "%-22s %-10s %-14s %-8s %-6s %-8s %-24s %s%n",
        job.getMetadata().getName(),
        s.phase,
        progressText,
        loss,
        ProgressView.formatSeconds(took.toSeconds()),
        job.getSpec().method.type,
        s.jobName == null ? "" : s.jobName,
        s.message);
    if (s.serving != null) {
      out.println(
          "serving: "
              + s.serving.endpoint
              + (s.serving.readyReplicas == null
                  ? ""
                  : ", ready replicas " + s.serving.readyReplicas)
              + (s.serving.adapterDigest == null
                  ? ""
                  : ", adapter sha256 " + s.serving.adapterDigest.substring(0, 12) + "…"));
    }
    out.println("conditions:");
    for (Condition c : s.conditions) {
      out.printf(
          Locale.ROOT,
          "  %-10s %-6s %-20s %s%n",
          c.getType(),
          c.getStatus(),
          c.getReason(),
          c.getMessage());
    }
    if (s.latestCheckpoint != null) {
      out.println(
          "checkpoints: "
              + (s.checkpoints == null ? 0 : s.checkpoints.size())
              + " in status, latest step "
              + s.latestCheckpoint.step
              + " at "
              + s.latestCheckpoint.uri
              + (s.bestCheckpoint == null ? "" : ", best step " + s.bestCheckpoint.step));
    }
    if (s.checkpointWarnings != null) {
      s.checkpointWarnings.forEach(w -> out.println("warning: " + w.reason + ": " + w.message));
    }
    out.println(
        "attempts: "
            + (s.attempts == null ? 0 : s.attempts)
            + (s.podName == null ? "" : ", pod: " + s.podName));
    String canary = CanaryProgress.line(s.serving);
    if (canary != null) {
      out.println(canary);
    }
    if ((s.phase == Phase.Succeeded || s.phase == Phase.Serving)
        && outputDir != null
        && Files.isDirectory(outputDir)) {
      out.println("output: " + outputDir);
      Path metrics = outputDir.resolve("metrics.json");
      if (Files.exists(metrics)) {
        try {
          JsonNode m = new ObjectMapper().readTree(metrics.toFile());
          JsonNode tuned = m.has("exported") ? m.path("exported") : m.path("final");
          printEval(out, "base model (before training)", m.path("initial"));
          printEval(
              out,
              m.path("exportBest").asBoolean(false)
                  ? "tuned model (best checkpoint, step " + tuned.path("step").asLong() + ")"
                  : "tuned model (after training)",
              tuned);
          ProgressView.comparison(m.path("initial"), tuned).forEach(out::println);
          Path curve = outputDir.resolve("loss-curve.svg");
          Files.writeString(
              curve, LossCurve.svg(m, job.getMetadata().getName() + ": loss per step"));
          out.println("  loss curve: " + curve);
        } catch (IOException e) {
          out.println("  (cannot read metrics.json: " + e.getMessage() + ")");
        }
      }
      try (Stream<Path> files = Files.list(outputDir)) {
        out.println("  files: " + files.map(p -> p.getFileName().toString()).sorted().toList());
      } catch (IOException e) {
        // ignore
      }
    }
  }

  private static void printEval(PrintStream out, String title, JsonNode eval) {
    if (eval.isMissingNode() || eval.isNull()) {
      return;
    }
    out.println("  " + title + ": " + ProgressView.describe(eval, "step"));
  }

  /** The last {@code lines} lines of a file, or "" if it does not exist yet. */
  static String tail(Path file, int lines) {
    try {
      if (!Files.exists(file)) {
        return "";
      }
      List<String> all = Files.readAllLines(file);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size())) + "\n";
    } catch (IOException e) {
      return "";
    }
  }

  public static Path repoRoot() {
    String configured = System.getProperty("kubetune.repoRoot");
    if (configured != null) {
      return Path.of(configured).toAbsolutePath();
    }
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isDirectory(dir.resolve("crds"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      throw new IllegalArgumentException(
          "run from inside the KubeTune repository (no crds/ found)");
    }
    return dir;
  }

  static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
