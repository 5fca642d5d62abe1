package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.v1alpha1.CanaryDecision;
import io.kubetune.api.v1alpha1.CanaryStatus;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.local.ClassifyClient.Answer;
import io.kubetune.operator.Names;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The canary in local mode with the operator deciding: the real operator, the embedded API server,
 * real trainer processes for each training run and real {@code trainer serve} processes for the
 * serving Deployment, while a client sends requests to the Service's endpoint the whole time.
 *
 * <ol>
 *   <li>Run 1 (the quick-start, gate passed) serves.
 *   <li>A retrain (new restartNonce) trains run 2; the operator serves it as a canary at 25%, the
 *       client gets its share from it, and after serving.canary.duration with no error the operator
 *       promotes it: run 2 is the served adapter.
 *   <li>A third run trains and passes the gate, but its exported weights are damaged in storage
 *       before the canary pods load them (storage corruption after the upload): the serving process
 *       verifies the SHA-256 the trainer reported and refuses to start, the canary's pods never
 *       become ready, and after serving.readinessTimeout the operator rolls the canary back; run 2
 *       keeps serving.
 * </ol>
 *
 * No request fails at any step. Each retrain is the usual one: a new restartNonce (with a new
 * maxSteps, so the runs differ) and the same checkpoints.uri; each run exports into its own
 * final/&lt;trainingRevision&gt;/ folder below it, so the served adapter's files stay while the
 * canary's are loaded next to them.
 */
class LocalCanaryEndToEndTest {
  static final Path ROOT = KubeTuneLocal.repoRoot();
  static final int WEIGHT = 25;

  @TempDir Path state;

  @Test
  void aRetrainIsACanaryPromotedByTheOperatorAndADamagedOneIsRolledBackWithNoFailedRequest()
      throws Exception {
    Path yaml = state.resolve("canary.yaml");
    Files.writeString(
        yaml,
        Files.readString(ROOT.resolve("examples/quickstart.yaml"))
            .replace(
                "  serving:\n    enabled: true\n",
                "  serving:\n"
                    + "    enabled: true\n"
                    + "    readinessTimeout: 60s\n"
                    + "    canary:\n"
                    + "      weight: "
                    + WEIGHT
                    + "\n"
                    + "      duration: 40s\n"));
    assertThat(Files.readString(yaml)).contains("canary:");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    List<Answer> answers = new CopyOnWriteArrayList<>();
    Figures figures = new Figures();
    KubeTuneLocal.Result result =
        KubeTuneLocal.run(
            new KubeTuneLocal.Options(yaml, 60, false, ROOT, state),
            new PrintStream(log, true, StandardCharsets.UTF_8),
            false,
            null,
            (client, serving, served) -> retrainTwice(client, serving, served, answers, figures));
    String output = log.toString(StandardCharsets.UTF_8);
    assertThat(result.exitCode()).as(output).isZero();
    assertThat(figures.done).as(output).isTrue();

    long canaryAnswers = answers.stream().filter(a -> "canary".equals(a.variant())).count();
    List<Answer> failed = answers.stream().filter(a -> a.status() != 200).toList();
    System.out.printf(
        "local canary (operator deciding): %d requests, %d canary answers, %d failed;"
            + " run 2: trained and its canary recorded %d s after the retrain, canary answers seen for %d s (%d of %d answers in its window"
            + " from it), promoted %d s after the retrain; run 3: rolled back %d s after its"
            + " canary started%n",
        answers.size(),
        canaryAnswers,
        failed.size(),
        figures.run2Canary.toSeconds(),
        figures.observed.toSeconds(),
        figures.windowCanary,
        figures.windowTotal,
        figures.run2Total.toSeconds(),
        figures.rollback.toSeconds());
    // What a user of local mode saw of the canaries.
    output.lines().filter(l -> l.startsWith("canary ")).forEach(System.out::println);
    assertThat(answers).hasSizeGreaterThan(100);
    assertThat(failed).as("failed requests").isEmpty();
    // Local mode's progress output showed each canary: weight, both variants, the decision.
    assertThat(output)
        .contains(
            "canary Observing at " + WEIGHT + "%: canary pvc://local-scratch/quickstart/final/")
        .contains("canary Promoted at " + WEIGHT + "%")
        .contains("canary RolledBack at " + WEIGHT + "%")
        .contains("| stable pvc://local-scratch/quickstart/final/");
  }

  /** What the test measured, for the printed figures. */
  static final class Figures {
    Duration run2Canary = Duration.ZERO;
    Duration observed = Duration.ZERO;
    Duration run2Total = Duration.ZERO;
    Duration rollback = Duration.ZERO;
    long windowCanary;
    long windowTotal;
    boolean done;
  }

  private void retrainTwice(
      KubernetesClient client,
      LocalServingRunner serving,
      FineTuneJob served,
      List<Answer> all,
      Figures figures)
      throws Exception {
    String ns = served.getMetadata().getNamespace();
    String name = served.getMetadata().getName();
    String run1 = served.getStatus().serving.adapterDigest;
    assertThat(run1).hasSize(64);
    String service = Names.servingService(served);
    ClassifyClient requests = new ClassifyClient(() -> serving.endpointOf(ns, service), name);
    List<Answer> answers = requests.answers;
    try {
      await().atMost(Duration.ofSeconds(30)).until(() -> answers.size() >= 10);

      // 2. Retrain: run 2 (a new restartNonce and another step count).
      Instant retrained = Instant.now();
      retrain(client, ns, name, "2", 70);
      FineTuneJob observing =
          awaitJob(
              client,
              ns,
              name,
              Duration.ofMinutes(6),
              j -> canary(j) != null && canary(j).decision == CanaryDecision.Observing);
      String run2 = canary(observing).adapterDigest;
      figures.run2Canary = Duration.between(retrained, Instant.now());
      assertThat(run2).hasSize(64).isNotEqualTo(run1);
      assertThat(observing.getStatus().adapter.digest).isEqualTo(run2);
      assertThat(canary(observing).weight).isEqualTo(WEIGHT);
      assertThat(observing.getStatus().serving.adapterDigest).isEqualTo(run1);
      int beforeCanary = answers.size();

      FineTuneJob promoted =
          awaitJob(
              client,
              ns,
              name,
              Duration.ofMinutes(3),
              j -> canary(j) != null && canary(j).decision != CanaryDecision.Observing);
      assertThat(canary(promoted).decision)
          .as(canary(promoted).message)
          .isEqualTo(CanaryDecision.Promoted);
      assertThat(canary(promoted).requests).isPositive();
      assertThat(canary(promoted).errors).isZero();
      assertThat(canary(promoted).stableErrors).isZero();
      // The canary's answers came from run 2, about its weight's share of those in its window
      // (the split is exact per pod; the window's edges may hold answers of the pod before).
      // A snapshot first: the client thread keeps appending.
      List<Answer> snapshot = List.copyOf(answers);
      List<Answer> during = snapshot.subList(beforeCanary, snapshot.size());
      int first = indexOf(during, "canary", true);
      int last = indexOf(during, "canary", false);
      assertThat(first).as("the client got canary answers").isNotNegative();
      List<Answer> window = during.subList(first, last + 1);
      figures.windowCanary = window.stream().filter(a -> "canary".equals(a.variant())).count();
      figures.windowTotal = window.size();
      figures.observed = Duration.between(window.get(0).at(), window.get(window.size() - 1).at());
      assertThat(window)
          .filteredOn(a -> "canary".equals(a.variant()))
          .allSatisfy(a -> assertThat(a.digest()).isEqualTo(run2));
      assertThat(window)
          .filteredOn(a -> "stable".equals(a.variant()))
          .allSatisfy(a -> assertThat(a.digest()).isEqualTo(run1));
      assertThat((double) figures.windowCanary / figures.windowTotal)
          .as("canary share of %d answers", figures.windowTotal)
          .isBetween(WEIGHT / 100.0 - 0.1, WEIGHT / 100.0 + 0.1);
      // The operator's tally of the canary's requests is its last look at the pods before it
      // decided: no more than this client (the only traffic) was answered by the canary, plus one
      // in flight, and no less than half of what it had seen by the decision (the pods are asked
      // once per reconcile, a few seconds apart; answers after the decision are not in it).
      Instant decided = Instant.parse(canary(promoted).decidedAt);
      long canaryAnswers = snapshot.stream().filter(a -> "canary".equals(a.variant())).count();
      long seenByDecision =
          snapshot.stream()
              .filter(a -> "canary".equals(a.variant()) && !a.at().isAfter(decided))
              .count();
      assertThat(canary(promoted).requests)
          .isLessThanOrEqualTo(canaryAnswers + 1)
          .isGreaterThanOrEqualTo(seenByDecision / 2);

      // Promoted: the rollout to run 2 alone completes; run 2 is the served adapter.
      FineTuneJob onRun2 =
          awaitJob(
              client,
              ns,
              name,
              Duration.ofMinutes(2),
              j ->
                  j.getStatus().phase == Phase.Serving
                      && run2.equals(j.getStatus().serving.adapterDigest)
                      && j.getStatus().serving.rollout == null);
      figures.run2Total = Duration.between(retrained, Instant.now());
      // Run 2's own export folder below the unchanged checkpoints.uri; run 1's files are intact.
      String run1Uri = observing.getStatus().serving.adapterUri;
      assertThat(onRun2.getStatus().serving.adapterUri)
          .isEqualTo(
              "pvc://local-scratch/quickstart/final/" + onRun2.getStatus().trainingRevision + "/")
          .isNotEqualTo(run1Uri);
      assertThat(run1Uri).startsWith("pvc://local-scratch/quickstart/final/");
      assertThat(sha256(local(run1Uri).resolve("adapter_model.safetensors"))).isEqualTo(run1);
      int afterPromotion = answers.size();
      await().atMost(Duration.ofSeconds(60)).until(() -> answers.size() >= afterPromotion + 22);
      assertThat(List.copyOf(answers).subList(afterPromotion + 2, afterPromotion + 22))
          .allSatisfy(
              a -> {
                assertThat(a.variant()).isEqualTo("stable");
                assertThat(a.digest()).isEqualTo(run2);
              });

      // 3. A third run whose exported weights are damaged before its canary pods load them.
      retrain(client, ns, name, "3", 50);
      FineTuneJob badCanary =
          awaitJob(
              client,
              ns,
              name,
              Duration.ofMinutes(6),
              j ->
                  canary(j) != null
                      && canary(j).decision == CanaryDecision.Observing
                      && !run2.equals(canary(j).adapterDigest));
      // The canary is recorded before the Deployment changes (the next reconcile, >= 1 s later):
      // the weights are damaged before any serving process reads them.
      Path weights = local(canary(badCanary).adapterUri).resolve("adapter_model.safetensors");
      byte[] bytes = Files.readAllBytes(weights);
      bytes[bytes.length - 1] ^= 0x01;
      Files.write(weights, bytes);
      String run3 = canary(badCanary).adapterDigest;
      Instant canaryStarted = Instant.parse(canary(badCanary).startedAt);
      // Why the canary pod never becomes ready: the serving process refuses the damaged weights.
      // Read while the crash-looping canary pod exists (the rollback removes it, and its error).
      await()
          .atMost(Duration.ofSeconds(60))
          .until(() -> String.valueOf(serving.lastError()).contains("SHA-256"));
      FineTuneJob rolledBack =
          awaitJob(
              client,
              ns,
              name,
              Duration.ofMinutes(3),
              j -> canary(j) != null && canary(j).decision != CanaryDecision.Observing);
      figures.rollback = Duration.between(canaryStarted, Instant.now());
      assertThat(canary(rolledBack).decision)
          .as(canary(rolledBack).message)
          .isEqualTo(CanaryDecision.RolledBack);
      assertThat(canary(rolledBack).adapterDigest).isEqualTo(run3);
      assertThat(canary(rolledBack).message).contains("did not become ready within 1m");
      assertThat(rolledBack.getStatus().serving.adapterDigest).isEqualTo(run2);
      assertThat(rolledBack.getStatus().serving.failedAdapterDigest).isEqualTo(run3);
      // Run 2 keeps serving.
      int afterRollback = answers.size();
      await().atMost(Duration.ofSeconds(60)).until(() -> answers.size() >= afterRollback + 20);
      assertThat(List.copyOf(answers).subList(afterRollback, afterRollback + 20))
          .allSatisfy(
              a -> {
                assertThat(a.variant()).isEqualTo("stable");
                assertThat(a.digest()).isEqualTo(run2);
              });
      assertThat(
              client
                  .resources(FineTuneJob.class)
                  .inNamespace(ns)
                  .withName(name)
                  .get()
                  .getStatus()
                  .serving
                  .adapterDigest)
          .isEqualTo(run2);
      figures.done = true;
    } finally {
      requests.close();
      all.addAll(answers);
    }
  }

  /** A new training run: restartNonce and maxSteps in one update, checkpoints.uri unchanged. */
  private static void retrain(
      KubernetesClient client, String ns, String name, String nonce, int steps) {
    client
        .resources(FineTuneJob.class)
        .inNamespace(ns)
        .withName(name)
        .edit(
            j -> {
              j.getSpec().restartNonce = nonce;
              j.getSpec().hyperparameters.maxSteps = steps;
              return j;
            });
  }

  /** A pvc://local-scratch/... URI as the local folder local mode keeps that claim in. */
  private Path local(String pvcUri) {
    String prefix = "pvc://local-scratch/";
    assertThat(pvcUri).startsWith(prefix);
    return state.resolve("pvc/local-scratch").resolve(pvcUri.substring(prefix.length()));
  }

  private static String sha256(Path file) throws Exception {
    return java.util.HexFormat.of()
        .formatHex(
            java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
  }

  private static CanaryStatus canary(FineTuneJob job) {
    return job.getStatus() == null || job.getStatus().serving == null
        ? null
        : job.getStatus().serving.canary;
  }

  private static FineTuneJob awaitJob(
      KubernetesClient client,
      String ns,
      String name,
      Duration atMost,
      Predicate<FineTuneJob> condition) {
    FineTuneJob[] seen = new FineTuneJob[1];
    await()
        .atMost(atMost)
        .pollInterval(Duration.ofMillis(20))
        .until(
            () -> {
              FineTuneJob j =
                  client.resources(FineTuneJob.class).inNamespace(ns).withName(name).get();
              if (j != null && j.getStatus() != null && condition.test(j)) {
                seen[0] = j;
                return true;
              }
              return false;
            });
    return seen[0];
  }

  private static int indexOf(List<Answer> answers, String variant, boolean first) {
    int found = -1;
    for (int i = 0; i < answers.size(); i++) {
      if (variant.equals(answers.get(i).variant())) {
        if (first) {
          return i;
        }
        found = i;
      }
    }
    return found;
  }
}
