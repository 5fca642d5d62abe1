package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Condition;
import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.Phase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Local mode end to end: the real operator, the embedded API server, the local pod runner and the
 * real trainer process on the shipped quick-start (model and data from examples/).
 */
class LocalModeEndToEndTest {
  static final Path ROOT = KubeTuneLocal.repoRoot();

  @TempDir Path state;

  @Test
  void quickstartTrainsBeatsTheBaseModelAndServesTheAdapter() throws Exception {
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    KubeTuneLocal.Result result =
        KubeTuneLocal.run(
            new KubeTuneLocal.Options(
                ROOT.resolve("examples/quickstart.yaml"), 60, false, ROOT, state),
            new PrintStream(log, true, StandardCharsets.UTF_8),
            false,
            null);
    String output = log.toString(StandardCharsets.UTF_8);

    assertThat(result.exitCode()).as(output).isZero();
    // The quick-start's gate (accuracy must beat the base by 0.1) passes, so it is served.
    assertThat(result.finalState().getStatus().phase).as(output).isEqualTo(Phase.Serving);
    assertThat(condition(result, "Promoted").getStatus()).isEqualTo("True");
    assertThat(condition(result, "Serving").getStatus()).isEqualTo("True");
    assertThat(result.finalState().getStatus().serving.readyReplicas).isEqualTo(1);
    assertThat(result.finalState().getStatus().serving.adapterDigest)
        .isEqualTo(result.finalState().getStatus().adapter.digest);
    // The served adapter answered the example request with one of the dataset's labels.
    JsonNode answer = new ObjectMapper().readTree(result.exampleResponse());
    assertThat(answer.at("/data/0/label").asText())
        .isIn("account", "billing", "bug", "feature_request", "shipping");
    assertThat(answer.at("/data/0/probabilities")).hasSize(5);
    assertThat(output).contains("curl -s http://127.0.0.1:").contains("/v1/classify");
    assertValidCheckpoints(state.resolve("pvc/local-scratch/quickstart"));
    // The ledger shows the URIs the user wrote, as on a cluster (the runner serves the log with
    // the container's mount paths, which the operator maps back to pvc://).
    assertThat(result.finalState().getStatus().latestCheckpoint.uri)
        .isEqualTo("pvc://local-scratch/quickstart/step-000000060/");
    Condition complete =
        result.finalState().getStatus().conditions.stream()
            .filter(c -> c.getType().equals("Complete"))
            .findFirst()
            .orElseThrow();
    assertThat(complete.getStatus()).isEqualTo("True");

    Path out = result.outputDir();
    ObjectMapper json = new ObjectMapper();
    JsonNode adapterConfig = json.readTree(out.resolve("adapter_config.json").toFile());
    assertThat(adapterConfig.path("peft_type").asText()).isEqualTo("LORA");
    assertThat(adapterConfig.path("r").asInt()).isEqualTo(8);
    assertThat(Files.size(out.resolve("adapter_model.safetensors"))).isPositive();

    JsonNode metrics = json.readTree(out.resolve("metrics.json").toFile());
    double base = metrics.path("initial").path("accuracy").asDouble();
    double tuned = metrics.path("final").path("accuracy").asDouble();
    assertThat(base).isLessThan(0.35); // five classes: chance is 0.2
    assertThat(tuned).as(output).isGreaterThan(base + 0.25);
    assertThat(output).contains("kubectl get ftj").contains("Succeeded").contains("tuned model");
    // PROGRESS comes from the operator reading the trainer's log through the API.
    assertThat(result.finalState().getStatus().progress.summary).isEqualTo("60/60 (100%)");
    // The run's own export folder: final/<trainingRevision>/ below checkpoints.uri.
    String revision = result.finalState().getStatus().trainingRevision;
    assertThat(result.finalState().getStatus().adapter.uri)
        .isEqualTo("pvc://local-scratch/quickstart/final/" + revision + "/");
    assertThat(out).endsWith(Path.of("local-scratch/quickstart/final", revision));
    String svg = Files.readString(out.resolve("loss-curve.svg"));
    assertThat(
            javax.xml.parsers.DocumentBuilderFactory.newInstance()
                .newDocumentBuilder()
                .parse(new java.io.ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)))
                .getDocumentElement()
                .getNodeName())
        .isEqualTo("svg");
  }

  @Test
  void s3UrisAreServedByTheEmbeddedObjectStore() throws Exception {
    // The example names http://127.0.0.1:9000; drop it so the test takes any free port.
    Path yaml = state.resolve("s3-example.yaml");
    Files.writeString(
        yaml,
        Files.readString(ROOT.resolve("examples/support-tickets-classification.yaml"))
            .replaceAll("(?m)^\\s*endpoint:.*\\n", "")
            // 60 steps instead of 300: a gate this short run passes, so serving from s3:// runs.
            .replace("threshold: 0.8", "threshold: 0.4"));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    KubeTuneLocal.Result result =
        KubeTuneLocal.run(
            new KubeTuneLocal.Options(yaml, 60, false, ROOT, state),
            new PrintStream(log, true, StandardCharsets.UTF_8),
            false,
            null);
    String output = log.toString(StandardCharsets.UTF_8);

    assertThat(result.exitCode()).as(output).isZero();
    var status = result.finalState().getStatus();
    assertThat(status.adapter.uri)
        .isEqualTo(
            "s3://kubetune-examples/checkpoints/support-tickets/final/"
                + status.trainingRevision
                + "/");
    assertThat(status.adapter.digest).hasSize(64);
    assertThat(status.adapter.tunedMetrics.get("accuracy"))
        .isGreaterThan(status.adapter.baseMetrics.get("accuracy") + 0.25);
    // The output was uploaded to the embedded S3 server (its filesystem store) and copied back.
    assertThat(result.outputDir().resolve("adapter_model.safetensors")).exists();
    // Checkpoints were committed to the embedded S3 server with manifests that verify.
    assertValidCheckpoints(state.resolve("s3/kubetune-examples/checkpoints/support-tickets"));
    // Served from s3://: the server downloaded base model and adapter from the embedded S3
    // server with the credentials the operator injects from the Secret, and answered.
    assertThat(result.finalState().getStatus().phase).as(output).isEqualTo(Phase.Serving);
    assertThat(result.exampleResponse()).contains("\"label\"");
    assertThat(output).contains("S3 server").contains("Promoted");
  }

  @Test
  void badInputFailsAtOnceWithTheFileAndLine() throws Exception {
    Path data = state.resolve("pvc/bad-data");
    Files.createDirectories(data);
    Files.writeString(
        data.resolve("train.jsonl"),
        "{\"text\": \"refund please\", \"label\": \"billing\"}\n{not json\n");
    Path yaml = state.resolve("bad.yaml");
    Files.writeString(
        yaml,
        """
        apiVersion: kubetune.io/v1alpha1
        kind: FineTuneJob
        metadata:
          name: bad-input
        spec:
          baseModel:
            uri: pvc://kubetune-examples/models/tiny-llama/
          dataset:
            train: pvc://bad-data/train.jsonl
            format: classification
          method:
            type: LoRA
          checkpoints:
            uri: pvc://local-scratch/bad-input/
        """);
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    KubeTuneLocal.Result result =
        KubeTuneLocal.run(
            new KubeTuneLocal.Options(yaml, 5, false, ROOT, state),
            new PrintStream(log, true, StandardCharsets.UTF_8),
            false,
            null);

    assertThat(result.exitCode()).isEqualTo(1);
    var status = result.finalState().getStatus();
    assertThat(status.phase).isEqualTo(Phase.Failed);
    assertThat(status.attempts).as("bad input is not retried").isEqualTo(1);
    Condition failed =
        status.conditions.stream()
            .filter(c -> c.getType().equals("Failed"))
            .findFirst()
            .orElseThrow();
    assertThat(failed.getReason()).isEqualTo("BadInput");
    assertThat(status.message).contains("train.jsonl:2");
  }

  @Test
  void aKilledTrainerIsRetriedAndResumesFromItsLastCheckpoint() throws Exception {
    // The quick-start with a checkpoint every 10 steps, so one exists before the kill.
    Path yaml = state.resolve("checkpointed.yaml");
    Files.writeString(
        yaml,
        Files.readString(ROOT.resolve("examples/quickstart.yaml"))
            .replace("everySteps: 50", "everySteps: 10")
            .replace("enabled: true", "enabled: false")); // training only: faster
    Path firstPodLog = state.resolve("pods/quickstart-train-1/trainer.stdout.log");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    AtomicBoolean killed = new AtomicBoolean();
    KubeTuneLocal.Result result =
        KubeTuneLocal.run(
            new KubeTuneLocal.Options(yaml, 40, false, ROOT, state),
            new PrintStream(log, true, StandardCharsets.UTF_8),
            false,
            runner -> {
              // Like a node failure: kill -9 the first trainer once it committed a checkpoint.
              Thread killer =
                  new Thread(
                      () -> {
                        await()
                            .atMost(Duration.ofSeconds(60))
                            .pollInterval(Duration.ofMillis(20))
                            .until(
                                () ->
                                    runner.processOf("quickstart-train") != null
                                        && Files.exists(firstPodLog)
                                        && TrainerEvent.parseLog(Files.readString(firstPodLog))
                                            .stream()
                                            .anyMatch(e -> e instanceof TrainerEvent.Checkpoint));
                        runner.processOf("quickstart-train").destroyForcibly();
                        killed.set(true);
                      });
              killer.setDaemon(true);
              killer.start();
            });

    String output = log.toString(StandardCharsets.UTF_8);
    assertThat(killed).isTrue();
    assertThat(result.exitCode()).as(output).isZero();
    assertThat(result.finalState().getStatus().phase).isEqualTo(Phase.Succeeded);
    assertThat(result.finalState().getStatus().attempts).isEqualTo(2);
    // The operator's ledger saw the checkpoints of both attempts.
    assertThat(result.finalState().getStatus().latestCheckpoint.step).isGreaterThanOrEqualTo(30);
    assertThat(Files.readString(state.resolve("pods/quickstart-train-2/trainer.stderr.log")))
        .contains("resuming from step");
  }

  static Condition condition(KubeTuneLocal.Result result, String type) {
    return result.finalState().getStatus().conditions.stream()
        .filter(c -> c.getType().equals(type))
        .findFirst()
        .orElseThrow();
  }

  /**
   * At least one committed checkpoint under {@code dir}: a step-N folder whose manifest.json lists
   * files that exist with the listed size and SHA-256.
   */
  static void assertValidCheckpoints(Path dir) throws Exception {
    List<Path> manifests;
    try (var walk = Files.walk(dir)) {
      manifests =
          walk.filter(p -> p.getFileName().toString().equals("manifest.json"))
              .filter(p -> p.getParent().getFileName().toString().startsWith("step-"))
              .toList();
    }
    assertThat(manifests).as("committed checkpoints under " + dir).isNotEmpty();
    ObjectMapper json = new ObjectMapper();
    for (Path manifest : manifests) {
      JsonNode m = json.readTree(manifest.toFile());
      assertThat(m.get("step").asLong()).isPositive();
      assertThat(m.get("files")).isNotEmpty();
      for (JsonNode f : m.get("files")) {
        Path step = manifest.getParent();
        Path file = step.resolve(m.get("attempt").asText()).resolve(f.get("name").asText());
        if (!Files.exists(file)) {
          file = step.resolve(f.get("name").asText());
        }
        assertThat(file).exists();
        assertThat(Files.size(file)).isEqualTo(f.get("size").asLong());
        assertThat(
                java.util.HexFormat.of()
                    .formatHex(
                        java.security.MessageDigest.getInstance("SHA-256")
                            .digest(Files.readAllBytes(file))))
            .isEqualTo(f.get("sha256").asText());
      }
    }
  }
}
