package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.api.v1alpha1.BaseModelSpec;
import io.kubetune.api.v1alpha1.DatasetSpec;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.HyperparametersSpec;
import io.kubetune.api.v1alpha1.LoraSpec;
import io.kubetune.api.v1alpha1.MethodSpec;
import io.kubetune.local.ClassifyClient.Answer;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.model.ServingModel;
import io.kubetune.operator.model.ServingModel.Adapter;
import io.kubetune.operator.model.ServingModel.Canary;
import io.kubetune.operator.serving.CanaryDecider;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The canary in local mode, at the serving runner: real {@code trainer serve} processes run the
 * Deployments {@link ServingModel} builds for each step of a canary while a client sends requests
 * through the Service's endpoint the whole time. Run 1 serves; run 2 rolls out as a canary next to
 * it and answers its share; run 2 is promoted; a bad run 3 (its pods never become ready) is rolled
 * back and run 2 keeps serving. No request fails at any step.
 *
 * <p>The decisions (promote, roll back) are applied here by hand, in the order the operator's
 * canary state machine ({@code ServingRollout}, {@code CanaryDecider}) applies them; that state
 * machine is tested against the mock API in {@code CanaryReconcileLoopTest}, and local mode hands
 * it {@link LocalServingRunner#variants} as its serving facts. What this shows is the pod side and
 * local mode's part: both adapters in one process, the split, the per-variant facts the operator
 * reads, and rollouts without a failed request.
 */
class LocalCanaryTest {
  static final Path ROOT = KubeTuneLocal.repoRoot();
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path state;

  @Test
  void aSecondRunIsACanaryThenPromotedAndABadThirdIsRolledBackWithNoFailedRequest()
      throws Exception {
    assertThat(ROOT.resolve("trainer-image/target/kubetune-trainer.jar"))
        .as("the trainer is packaged (mvn -pl trainer-image -am package -DskipTests)")
        .exists();
    Path scratch = state.resolve("pvc/local-scratch");
    String run1 = train(scratch.resolve("run-1"), 15);
    String run2 = train(scratch.resolve("run-2"), 30);
    assertThat(run2).isNotEqualTo(run1);

    try (EmbeddedApiServer api = new EmbeddedApiServer();
        LocalServingRunner runner =
            new LocalServingRunner(
                api.client(),
                state,
                Map.of(KubeTuneLocal.EXAMPLES_CLAIM, ROOT.resolve("examples")),
                ROOT.resolve("trainer-image/bin/trainer"))) {
      api.installCrd(ROOT.resolve("crds/finetunejobs.kubetune.io-v1.yml"));
      api.createNamespace("default");
      FineTuneJob parsed =
          KubeTuneLocal.readFineTuneJob(
              ROOT.resolve("examples/quickstart.yaml"),
              ROOT,
              new PrintStream(new ByteArrayOutputStream()));
      parsed.getMetadata().setNamespace("default");
      FineTuneJob job = api.client().resource(parsed).create();
      FineTuneJobModel model = FineTuneJobModel.from(job, OperatorSettings.defaults());
      String ns = "default";
      String service = Names.servingService(job);
      api.client().resource(ServingModel.service(model)).create();
      Adapter first = new Adapter("pvc://local-scratch/run-1/", run1);
      Adapter second = new Adapter("pvc://local-scratch/run-2/", run2);
      Adapter bad = new Adapter("pvc://local-scratch/run-2/", "0".repeat(64));
      runner.start();

      // 1. Run 1 serves.
      apply(api, ServingModel.deployment(model, first));
      awaitRolledOut(runner, api, ns, job, run1, null);

      ClassifyClient client =
          new ClassifyClient(() -> runner.endpointOf(ns, service), job.getMetadata().getName());
      List<Answer> answers = client.answers;
      try {
        // 2. Run 2 rolls out as a canary next to run 1 and answers 25% of the requests.
        apply(api, ServingModel.deployment(model, first, new Canary(second, 25)));
        awaitRolledOut(runner, api, ns, job, run1, run2);
        // Skip an answer that may still have been on its way from the old pod.
        int from = answers.size() + 2;
        await().atMost(Duration.ofSeconds(60)).until(() -> answers.size() >= from + 40);
        List<Answer> window = List.copyOf(answers).subList(from, from + 40);
        assertThat(window)
            .filteredOn(a -> "canary".equals(a.variant()))
            .hasSize(10)
            .allSatisfy(a -> assertThat(a.digest()).isEqualTo(run2));
        assertThat(window)
            .filteredOn(a -> "stable".equals(a.variant()))
            .hasSize(30)
            .allSatisfy(a -> assertThat(a.digest()).isEqualTo(run1));
        // The facts the operator will poll: one ready pod, the canary's share and no errors.
        Map<String, String> facts = runner.variantsOf(ns, Names.servingDeployment(job));
        assertThat(facts).hasSize(1);
        JsonNode canary = variant(facts.values().iterator().next(), job, "canary");
        assertThat(canary.get("sha256").asText()).isEqualTo(run2);
        assertThat(canary.get("weight").asInt()).isEqualTo(25);
        assertThat(canary.get("requests").asLong()).isGreaterThanOrEqualTo(10);
        assertThat(canary.get("errors").asLong()).isZero();
        // The same facts as the operator reads them in local mode (its ServingFacts), summed as
        // its canary decision sums them.
        Deployment served =
            api.client()
                .apps()
                .deployments()
                .inNamespace(ns)
                .withName(Names.servingDeployment(job))
                .get();
        CanaryDecider.Tally tally =
            CanaryDecider.Tally.of(
                runner.variants(api.client(), served), job.getMetadata().getName(), run1, run2);
        assertThat(tally.requests()).isGreaterThanOrEqualTo(10);
        assertThat(tally.errors()).isZero();
        assertThat(tally.stableRequests()).isPositive();
        assertThat(tally.stableErrors()).isZero();

        // 3. Promotion: run 2 becomes the served adapter, no canary.
        apply(api, ServingModel.deployment(model, second));
        awaitRolledOut(runner, api, ns, job, run2, null);
        int promoted = answers.size() + 2;
        await().atMost(Duration.ofSeconds(60)).until(() -> answers.size() >= promoted + 20);
        assertThat(List.copyOf(answers).subList(promoted, promoted + 20))
            .allSatisfy(
                a -> {
                  assertThat(a.variant()).isEqualTo("stable");
                  assertThat(a.digest()).isEqualTo(run2);
                });

        // 4. A bad canary: its pods never become ready (its adapter fails verification), so the
        // rollout never completes and run 2 keeps answering; the rollback restores the template.
        apply(api, ServingModel.deployment(model, second, new Canary(bad, 25)));
        await()
            .atMost(Duration.ofSeconds(90))
            .until(() -> runner.lastError() != null && runner.lastError().contains("SHA-256"));
        int during = answers.size();
        await().atMost(Duration.ofSeconds(60)).until(() -> answers.size() >= during + 10);
        apply(api, ServingModel.deployment(model, second));
        awaitRolledOut(runner, api, ns, job, run2, null);
        int rolledBack = answers.size();
        await().atMost(Duration.ofSeconds(60)).until(() -> answers.size() >= rolledBack + 10);
        // A snapshot: a view of the list the client thread appends to is invalidated by its next
        // add.
        List<Answer> sinceBad = List.copyOf(answers);
        assertThat(sinceBad.subList(during, sinceBad.size()))
            .allSatisfy(
                a -> {
                  assertThat(a.variant()).isEqualTo("stable");
                  assertThat(a.digest()).isEqualTo(run2);
                });
      } finally {
        client.close();
      }
      System.out.printf(
          "local canary: %d requests, %d canary answers, %d failed%n",
          answers.size(),
          answers.stream().filter(a -> "canary".equals(a.variant())).count(),
          answers.stream().filter(a -> a.status() != 200).count());
      assertThat(answers).hasSizeGreaterThan(100);
      assertThat(answers).allSatisfy(a -> assertThat(a.status()).as(a.error()).isEqualTo(200));
    }
  }

  private static JsonNode variant(String body, FineTuneJob job, String variant) throws IOException {
    for (JsonNode v : JSON.readTree(body).get("data")) {
      if (v.get("model").asText().equals(job.getMetadata().getName())
          && v.get("variant").asText().equals(variant)) {
        return v;
      }
    }
    throw new AssertionError("no " + variant + " variant in " + body);
  }

  /** Creates or replaces the Deployment, as the operator's dependent resource does. */
  private static void apply(EmbeddedApiServer api, Deployment deployment) {
    Deployment existing = api.client().resource(deployment).get();
    if (existing == null) {
      api.client().resource(deployment).create();
    } else {
      deployment.getMetadata().setResourceVersion(existing.getMetadata().getResourceVersion());
      deployment.setStatus(existing.getStatus());
      api.client().resource(deployment).update();
    }
  }

  /**
   * The rollout finished: one pod in all (the Deployment's status), ready, serving {@code stable}
   * and {@code canary} (null: no canary), as its {@code GET /v1/variants} says.
   */
  private static void awaitRolledOut(
      LocalServingRunner runner,
      EmbeddedApiServer api,
      String ns,
      FineTuneJob job,
      String stable,
      String canary) {
    String name = job.getMetadata().getName();
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              Deployment d =
                  api.client()
                      .apps()
                      .deployments()
                      .inNamespace(ns)
                      .withName(Names.servingDeployment(job))
                      .get();
              if (d.getStatus() == null
                  || !Integer.valueOf(1).equals(d.getStatus().getReplicas())) {
                return false;
              }
              Map<String, String> facts = runner.variantsOf(ns, Names.servingDeployment(job));
              if (facts.size() != 1) {
                return false;
              }
              String stableSeen = null;
              String canarySeen = null;
              for (JsonNode v : JSON.readTree(facts.values().iterator().next()).get("data")) {
                if (v.get("model").asText().equals(name)) {
                  if (v.get("variant").asText().equals("canary")) {
                    canarySeen = v.get("sha256").asText();
                  } else {
                    stableSeen = v.get("sha256").asText();
                  }
                }
              }
              return stable.equals(stableSeen) && java.util.Objects.equals(canary, canarySeen);
            });
  }

  /** Trains a LoRA ticket classifier on tiny-llama with the trainer; returns its digest. */
  private static String train(Path output, int steps) throws Exception {
    TrainerConfig config = new TrainerConfig();
    config.baseModel = new BaseModelSpec();
    config.baseModel.uri = ROOT.resolve("examples/models/tiny-llama").toUri().toString();
    config.dataset = new DatasetSpec();
    config.dataset.train =
        ROOT.resolve("examples/data/support-tickets/train.jsonl").toUri().toString();
    config.dataset.validation =
        ROOT.resolve("examples/data/support-tickets/test.jsonl").toUri().toString();
    config.dataset.format = DatasetSpec.Format.classification;
    config.method = new MethodSpec();
    config.method.type = MethodSpec.Type.LoRA;
    config.method.lora = new LoraSpec();
    config.method.lora.rank = 8;
    config.method.lora.alpha = 16.0;
    config.method.lora.dropout = 0.0;
    config.method.lora.targetModules = List.of("q_proj", "v_proj");
    config.hyperparameters = new HyperparametersSpec();
    config.hyperparameters.maxSteps = steps;
    config.hyperparameters.learningRate = 1e-3;
    config.hyperparameters.batchSize = 16;
    config.hyperparameters.maxSequenceLength = 64;
    config.hyperparameters.evalEverySteps = steps;
    config.output = new TrainerConfig.Output();
    config.output.uri = output.toUri().toString();
    Files.createDirectories(output.getParent());
    Path configFile = output.getParent().resolve(output.getFileName() + "-config.json");
    JSON.writeValue(configFile.toFile(), config);
    List<String> command = new ArrayList<>();
    command.add(ROOT.resolve("trainer-image/bin/trainer").toString());
    command.addAll(List.of("train", "--config", configFile.toString(), "--termination-log", ""));
    Path log = output.getParent().resolve(output.getFileName() + ".log");
    Process p =
        new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("training finished").isTrue();
    assertThat(p.exitValue()).as(Files.readString(log)).isZero();
    byte[] weights = Files.readAllBytes(output.resolve("adapter_model.safetensors"));
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(weights))
        .toLowerCase(java.util.Locale.ROOT);
  }
}
