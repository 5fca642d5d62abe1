package io.kubetune.local.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.ListOptionsBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.local.KubeTuneLocal;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.TrainingJobBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The operator at scale on the real API server (see docs/control-plane.md). Not a test: run with
 *
 * <pre>
 * java -Xmx512m -cp operator/local/target/test-classes:operator/local/target/kubetune-local.jar:operator/local/target/lib/* \
 *   io.kubetune.local.cluster.OperatorScaleBenchmark [out.json] [count] [bare-client-threads]
 * </pre>
 *
 * <ol>
 *   <li>Peer: a bare client creates {@code count} training Jobs (the operator's own {@link
 *       TrainingJobBuilder} output, without owner references) with {@code bare-client-threads}
 *       threads; time until the last create returns.
 *   <li>Operator: {@code count} FineTuneJobs exist (created beforehand); the operator starts, as
 *       its ServiceAccount; time until all {@code count} training Jobs exist. Ratio = peer time /
 *       operator time (goal &gt;= 0.5).
 *   <li>Resync: the operator is restarted with nothing changed; its writes (create, update, patch,
 *       delete in the API server's audit log) until it is quiet for 10 s (goal 0).
 *   <li>Heap: used heap after a full GC with the operator and its informers running (this JVM also
 *       holds the benchmark's own client; goal &lt;= 256 MiB).
 * </ol>
 *
 * Every FineTuneJob and Job is suspended, so the Job controller creates no pods: the figures are
 * the operator's and the API server's, not pod churn's.
 */
public final class OperatorScaleBenchmark {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final String AGENT = "kubetune-operator-benchmark";
  private static final Set<String> WRITES = Set.of("create", "update", "patch", "delete");

  private OperatorScaleBenchmark() {}

  public static void main(String[] args) throws Exception {
    Path out = Path.of(args.length > 0 ? args[0] : "operator/local/target/operator-scale.json");
    int count = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
    int threads = args.length > 2 ? Integer.parseInt(args[2]) : 16;
    Path root = KubeTuneLocal.repoRoot();
    Path dir = Files.createTempDirectory("kubetune-benchmark-");
    ObjectNode result = JSON.createObjectNode();
    result.put("count", count);
    result.put("bareClientThreads", threads);
    result.put("processors", Runtime.getRuntime().availableProcessors());
    result.put(
        "loadAverageAtStart", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    try (ControlPlane cp = ControlPlane.start(ControlPlaneBinaries.locate(root), dir);
        KubernetesClient admin = cp.adminClient()) {
      result.put("controlPlaneStartSeconds", cp.startupTime().toMillis() / 1000.0);
      RealClusterSetup.prepare(cp, root);
      RealClusterSetup.enforceRestricted(admin, "bench-bare");
      RealClusterSetup.enforceRestricted(admin, "bench-ftj");
      FineTuneJob template =
          YAML.readValue(
              root.resolve("examples/support-tickets-classification.yaml").toFile(),
              FineTuneJob.class);

      // 1. The peer: a bare client creating the same Jobs.
      long t0 = System.nanoTime();
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<Future<?>> futures = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        FineTuneJob ftj = named(template, "bench-bare", i);
        ftj.getMetadata().setUid("00000000-0000-0000-0000-" + String.format("%012d", i));
        Job job = TrainingJobBuilder.build(FineTuneJobModel.from(ftj, OperatorSettings.defaults()));
        job.getMetadata().setOwnerReferences(List.of());
        futures.add(pool.submit(() -> admin.resource(job).create()));
      }
      for (Future<?> f : futures) {
        f.get();
      }
      pool.shutdown();
      double bare = seconds(t0);
      result.put("bareClientSeconds", bare);
      System.out.printf("bare client: %d Jobs in %.1f s%n", count, bare);

      // 2. The operator, FineTuneJobs already there.
      ExecutorService creators = Executors.newFixedThreadPool(threads);
      List<Future<?>> created = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        FineTuneJob ftj = named(template, "bench-ftj", i);
        created.add(creators.submit(() -> admin.resource(ftj).create()));
      }
      for (Future<?> f : created) {
        f.get();
      }
      creators.shutdown();
      KubernetesClient operatorClient = RealClusterSetup.operatorClient(cp, AGENT);
      long t1 = System.nanoTime();
      Operator operator = startOperator(operatorClient);
      while (jobCount(admin, "bench-ftj") < count) {
        Thread.sleep(200);
      }
      double operatorSeconds = seconds(t1);
      result.put("operatorSeconds", operatorSeconds);
      result.put("ratioBareOverOperator", bare / operatorSeconds);
      System.out.printf(
          "operator: %d Jobs in %.1f s (ratio bare/operator %.2f, goal >= 0.5)%n",
          count, operatorSeconds, bare / operatorSeconds);
      long quietAfterFirst =
          awaitQuiet(cp.auditLog(), Duration.ofSeconds(10), Duration.ofMinutes(10));
      result.put("operatorWritesUntilQuiet", writesSince(cp.auditLog(), 0)[0]);

      System.gc();
      Thread.sleep(500);
      System.gc();
      long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      result.put("heapUsedAfterGcMiB", heap / (1024.0 * 1024.0));
      System.out.printf("heap used after GC: %.0f MiB (goal <= 256)%n", heap / (1024.0 * 1024.0));

      // 3. Resync of unchanged resources: a restarted operator reconciles everything again.
      operator.stop();
      long mark = Files.size(cp.auditLog());
      SimpleMeterRegistry meters = new SimpleMeterRegistry();
      operator = startOperator(operatorClient, meters);
      // Quiet in the audit log is not enough (a reconcile of an unchanged resource may make no
      // request at all): also wait until the restarted operator has reconciled every one.
      long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
      while (reconciles(meters) < count && System.nanoTime() < deadline) {
        Thread.sleep(500);
      }
      awaitQuiet(cp.auditLog(), Duration.ofSeconds(10), Duration.ofMinutes(10));
      long[] resync = writesSince(cp.auditLog(), mark);
      result.put("resyncReconciles", reconciles(meters));
      result.put("resyncWrites", resync[0]);
      result.put("resyncRequests", resync[1]);
      System.out.printf(
          "resync of %d unchanged FineTuneJobs: %d reconciles, %d writes of %d requests (goal 0"
              + " writes)%n",
          count, reconciles(meters), resync[0], resync[1]);
      operator.stop();
      operatorClient.close();
      result.put("quietCheckMillis", quietAfterFirst);
    }
    result.put(
        "loadAverageAtEnd", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    Files.createDirectories(out.toAbsolutePath().getParent());
    JSON.writerWithDefaultPrettyPrinter().writeValue(out.toFile(), result);
    System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
    System.out.println("written to " + out);
    System.exit(0);
  }

  private static Operator startOperator(KubernetesClient client) {
    return startOperator(client, new SimpleMeterRegistry());
  }

  private static Operator startOperator(KubernetesClient client, SimpleMeterRegistry meters) {
    return RealClusterSetup.startOperator(client, OperatorSettings.defaults(), meters);
  }

  private static long reconciles(SimpleMeterRegistry meters) {
    return (long)
        meters.find("kubetune.reconciles").counters().stream()
            .mapToDouble(io.micrometer.core.instrument.Counter::count)
            .sum();
  }

  private static FineTuneJob named(FineTuneJob template, String namespace, int i)
      throws IOException {
    FineTuneJob ftj = YAML.readValue(YAML.writeValueAsString(template), FineTuneJob.class);
    ftj.getMetadata().setName(String.format("bench-%04d", i));
    ftj.getMetadata().setNamespace(namespace);
    ftj.getSpec().suspend = true;
    return ftj;
  }

  /** Jobs in a namespace, from one list call with limit 1 (remainingItemCount). */
  private static long jobCount(KubernetesClient admin, String namespace) {
    var list =
        admin
            .batch()
            .v1()
            .jobs()
            .inNamespace(namespace)
            .list(new ListOptionsBuilder().withLimit(1L).build());
    Long remaining = list.getMetadata().getRemainingItemCount();
    return list.getItems().size() + (remaining == null ? 0 : remaining);
  }

  /** Waits until the operator has made no request for {@code quiet}; returns the wait in ms. */
  private static long awaitQuiet(Path audit, Duration quiet, Duration max)
      throws IOException, InterruptedException {
    long start = System.nanoTime();
    long lastSize = -1;
    long lastChange = System.nanoTime();
    while (System.nanoTime() - start < max.toNanos()) {
      long size = operatorLines(audit);
      if (size != lastSize) {
        lastSize = size;
        lastChange = System.nanoTime();
      } else if (System.nanoTime() - lastChange > quiet.toNanos()) {
        break;
      }
      Thread.sleep(1000);
    }
    return (System.nanoTime() - start) / 1_000_000;
  }

  private static long operatorLines(Path audit) throws IOException {
    try (var lines = Files.lines(audit)) {
      return lines.filter(l -> l.contains(AGENT)).count();
    }
  }

  /** {writes, requests} of the operator in the audit log after byte offset {@code from}. */
  private static long[] writesSince(Path audit, long from) throws IOException {
    byte[] all = Files.readAllBytes(audit);
    String text =
        new String(
            all, (int) from, all.length - (int) from, java.nio.charset.StandardCharsets.UTF_8);
    long writes = 0;
    long requests = 0;
    for (String line : text.split("\n")) {
      if (line.isBlank() || !line.contains(AGENT)) {
        continue;
      }
      JsonNode event = JSON.readTree(line);
      if (!AGENT.equals(event.path("userAgent").asText())) {
        continue;
      }
      requests++;
      if (WRITES.contains(event.path("verb").asText())) {
        writes++;
      }
    }
    return new long[] {writes, requests};
  }

  private static double seconds(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }
}
