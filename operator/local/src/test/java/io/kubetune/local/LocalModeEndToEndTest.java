package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Condition;
import io.kubetune.api.v1alpha1.Phase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
  void quickstartTrainsAndBeatsTheBaseModel() throws Exception {
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
    assertThat(result.finalState().getStatus().phase).isEqualTo(Phase.Succeeded);
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
    assertThat(result.finalState().getStatus().adapter.uri)
        .isEqualTo("pvc://local-scratch/quickstart/final/");
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
            .replaceAll("(?m)^\\s*endpoint:.*\\n", ""));
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
        .isEqualTo("s3://kubetune-examples/checkpoints/support-tickets/final/");
    assertThat(status.adapter.digest).hasSize(64);
    assertThat(status.adapter.tunedMetrics.get("accuracy"))
        .isGreaterThan(status.adapter.baseMetrics.get("accuracy") + 0.25);
    // The output was uploaded to the embedded S3 server (its filesystem store) and copied back.
    assertThat(result.outputDir().resolve("adapter_model.safetensors")).exists();
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
            .replace("everySteps: 50", "everySteps: 10"));
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
                                        && Files.readString(firstPodLog)
                                            .contains("\"event\":\"checkpoint\""));
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
    assertThat(Files.readString(state.resolve("pods/quickstart-train-2/trainer.stderr.log")))
        .contains("resuming from step");
  }
}
