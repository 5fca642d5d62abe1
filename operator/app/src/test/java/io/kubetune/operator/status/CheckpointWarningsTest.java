package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.CheckpointWarning;
import io.kubetune.operator.support.Json;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class CheckpointWarningsTest {
  static final String RESUME_SKIPPING_50 =
      "{\"event\":\"resume\",\"step\":40,\"uri\":\"s3://ckpt/run/step-000000040/\","
          + "\"time\":\"2025-01-07T10:01:40.113Z\",\"metrics\":{\"eval_loss\":1.2},"
          + "\"skipped\":[{\"step\":50,\"uri\":\"s3://ckpt/run/step-000000050/\",\"reason\":"
          + "\"checksum mismatch: file trainable.safetensors has SHA-256 59..., manifest says"
          + " a8...\"}]}";

  static String failedLine(long step, int failures, long lastCheckpointStep) {
    return "{\"event\":\"warning\",\"reason\":\"CheckpointFailed\",\"step\":"
        + step
        + ",\"consecutiveFailures\":"
        + failures
        + ",\"lastCheckpointStep\":"
        + lastCheckpointStep
        + ",\"message\":\"PUT (If-None-Match: *) s3://ckpt/run/step-"
        + step
        + "/manifest.json failed after 10 attempts\"}";
  }

  static List<CheckpointWarning> read(String log, String now) {
    return CheckpointWarnings.fromLog(TrainerEvent.parseLog(log), UnaryOperator.identity(), now);
  }

  @Test
  void aSkippedCheckpointSaysWhichWhyAndWhereTheRunResumed() {
    List<CheckpointWarning> seen = read("starting\n" + RESUME_SKIPPING_50 + "\n", "NOW");

    assertThat(seen).hasSize(1);
    CheckpointWarning w = seen.get(0);
    assertThat(w.reason).isEqualTo("CheckpointSkipped");
    assertThat(w.step).isEqualTo(50L);
    assertThat(w.uri).isEqualTo("s3://ckpt/run/step-000000050/");
    assertThat(w.time).isEqualTo("NOW");
    assertThat(w.message)
        .isEqualTo(
            "checkpoint step 50 at s3://ckpt/run/step-000000050/ was rejected at resume: checksum"
                + " mismatch: file trainable.safetensors has SHA-256 59..., manifest says a8...;"
                + " resumed from step 40 (s3://ckpt/run/step-000000040/)");
  }

  @Test
  void everyCheckpointRejectedMeansTheRunStartedOver() {
    String log =
        "{\"event\":\"resume\",\"step\":0,\"skipped\":["
            + "{\"step\":50,\"uri\":\"s3://ckpt/run/step-000000050/\",\"reason\":\"no manifest\"},"
            + "{\"step\":40,\"uri\":\"s3://ckpt/run/step-000000040/\",\"reason\":\"truncated\"}]}";
    List<CheckpointWarning> seen = read(log, "NOW");

    assertThat(seen).extracting(w -> w.step).containsExactly(50L, 40L);
    assertThat(seen.get(1).message)
        .isEqualTo(
            "checkpoint step 40 at s3://ckpt/run/step-000000040/ was rejected at resume:"
                + " truncated; no intact checkpoint was left, the run started over from step 0");
    // Stored ordered by step.
    assertThat(CheckpointWarnings.merge(null, seen))
        .extracting(w -> w.step)
        .containsExactly(40L, 50L);
  }

  @Test
  void aFailedCheckpointSaysThatTrainingGoesOnAndWhichOneStaysInForce() {
    List<CheckpointWarning> seen =
        read(
            failedLine(60, 1, 50)
                + "\n"
                + failedLine(10, 2, -1)
                + "\n{\"event\":\"warning\",\"reason\":\"SomethingElse\",\"step\":70}",
            "NOW");

    assertThat(seen).hasSize(2);
    assertThat(seen.get(0).reason).isEqualTo("CheckpointFailed");
    assertThat(seen.get(0).step).isEqualTo(60L);
    assertThat(seen.get(0).uri).isNull();
    assertThat(seen.get(0).message)
        .isEqualTo(
            "checkpoint of step 60 could not be written (1 failure in a row); training goes on"
                + " and the last committed checkpoint, step 50, stays in force: PUT (If-None-Match:"
                + " *) s3://ckpt/run/step-60/manifest.json failed after 10 attempts");
    assertThat(seen.get(1).message)
        .startsWith("checkpoint of step 10 could not be written (2 failures in a row)")
        .contains("no checkpoint was committed yet");
  }

  @Test
  void pvcUrisAreShownAsTheUserWroteThem() {
    String log =
        RESUME_SKIPPING_50.replace(
            "s3://ckpt/run/", "file:///var/run/kubetune/pvc/model-store/checkpoints/chat/");
    CheckpointWarning w =
        CheckpointWarnings.fromLog(
                TrainerEvent.parseLog(log),
                io.kubetune.operator.model.FineTuneJobModel.userUris(
                    "pvc://model-store/checkpoints/chat"),
                "NOW")
            .get(0);
    assertThat(w.uri).isEqualTo("pvc://model-store/checkpoints/chat/step-000000050/");
    assertThat(w.message).contains("(pvc://model-store/checkpoints/chat/step-000000040/)");
  }

  @Test
  void mergingIsIdempotentKeepsTheFirstSightingAndReportsOnlyNewEntries() {
    List<CheckpointWarning> first = CheckpointWarnings.merge(null, read(RESUME_SKIPPING_50, "T1"));
    // The same tail read again later: nothing changes (no status write, no Event).
    List<CheckpointWarning> again = CheckpointWarnings.merge(first, read(RESUME_SKIPPING_50, "T2"));
    assertThat(Json.canonical(again)).isEqualTo(Json.canonical(first));
    assertThat(again.get(0).time).isEqualTo("T1");
    assertThat(CheckpointWarnings.added(first, again)).isEmpty();

    // A failure later in the same run is added, and only it is new.
    List<CheckpointWarning> more =
        CheckpointWarnings.merge(
            again, read(RESUME_SKIPPING_50 + "\n" + failedLine(60, 1, 50), "T3"));
    assertThat(more)
        .extracting(w -> w.reason + "@" + w.step)
        .containsExactly("CheckpointSkipped@50", "CheckpointFailed@60");
    assertThat(CheckpointWarnings.added(again, more)).extracting(w -> w.step).containsExactly(60L);

    // Nothing observed and nothing held: the field stays absent.
    assertThat(CheckpointWarnings.merge(null, List.of())).isNull();
  }

  @Test
  void boundedToTheHighestStepsSoAReReadTailCannotChurn() {
    StringBuilder log = new StringBuilder();
    for (int step = 10; step <= 150; step += 10) {
      log.append(failedLine(step, step / 10, 0)).append('\n');
    }
    List<CheckpointWarning> first = CheckpointWarnings.merge(null, read(log.toString(), "T1"));
    assertThat(first).hasSize(CheckpointWarnings.MAX_ENTRIES);
    assertThat(first.get(0).step).isEqualTo(60L);
    assertThat(first.get(first.size() - 1).step).isEqualTo(150L);

    List<CheckpointWarning> again =
        CheckpointWarnings.merge(new ArrayList<>(first), read(log.toString(), "T2"));
    assertThat(Json.canonical(again)).isEqualTo(Json.canonical(first));
    assertThat(CheckpointWarnings.added(first, again)).isEmpty();
  }

  @Test
  void longMessagesAreTruncated() {
    String log = failedLine(60, 1, 50).replace("failed after 10 attempts", "x".repeat(5000));
    assertThat(read(log, "NOW").get(0).message)
        .hasSize(FineTuneJobStatusAggregator.MAX_MESSAGE)
        .endsWith("...");
  }
}
