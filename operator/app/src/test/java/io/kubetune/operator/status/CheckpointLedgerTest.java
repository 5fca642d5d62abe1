package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.CheckpointRecord;
import io.kubetune.api.v1alpha1.EvalMetric;
import io.kubetune.operator.status.CheckpointLedger.Ledger;
import io.kubetune.operator.support.Json;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class CheckpointLedgerTest {
  static final Ledger EMPTY = new Ledger(null, null, null);

  static String checkpointLine(long step, double evalLoss) {
    return String.format(
        java.util.Locale.ROOT,
        "{\"event\":\"checkpoint\",\"step\":%d,\"uri\":\"s3://ckpt/run/step-%09d/\","
            + "\"time\":\"2025-01-07T10:00:%02d.5Z\",\"metrics\":{\"eval_loss\":%s,\"perplexity\":9.0}}",
        step,
        step,
        step % 60,
        evalLoss);
  }

  static CheckpointRecord record(long step, Map<String, Double> metrics) {
    CheckpointRecord r = new CheckpointRecord();
    r.step = step;
    r.uri = "s3://ckpt/run/step-" + step + "/";
    r.time = "T" + step;
    r.metrics = metrics;
    return r;
  }

  static List<Long> steps(List<CheckpointRecord> records) {
    return records.stream().map(r -> r.step).toList();
  }

  @Test
  void readsCheckpointAndResumeLinesWithTheirTimeAndMetrics() {
    String log =
        String.join(
            "\n",
            "{\"event\":\"resume\",\"step\":100,\"uri\":\"s3://ckpt/run/step-000000100/\","
                + "\"time\":\"2025-01-07T09:59:58.123456Z\",\"metrics\":{\"eval_loss\":1.5}}",
            "{\"event\":\"progress\",\"step\":101,\"totalSteps\":300,\"loss\":1.2}",
            "some library output {",
            "{\"event\":\"eval\",\"step\":200,\"eval_loss\":1.25}",
            checkpointLine(200, 1.25),
            // an older trainer: no time, no metrics; a non-finite metric is dropped
            "{\"event\":\"checkpoint\",\"step\":300,\"uri\":\"s3://ckpt/run/step-000000300/\","
                + "\"metrics\":{\"eval_loss\":\"NaN\"}}",
            "{\"event\":\"checkpoint\",\"step\":\"x\",\"uri\":\"s3://bad/\"}",
            "{\"event\":\"checkpoint\",\"step\":400,\"uri\":\"s3://ck");

    List<CheckpointRecord> seen =
        CheckpointLedger.fromLog(TrainerEvent.parseLog(log), UnaryOperator.identity(), "NOW");

    assertThat(steps(seen)).containsExactly(100L, 200L, 300L);
    assertThat(seen.get(0).time).isEqualTo("2025-01-07T09:59:58Z");
    assertThat(seen.get(0).metrics).containsExactly(Map.entry("eval_loss", 1.5));
    assertThat(seen.get(1).uri).isEqualTo("s3://ckpt/run/step-000000200/");
    assertThat(seen.get(1).time).isEqualTo("2025-01-07T10:00:20Z");
    assertThat(seen.get(1).metrics)
        .containsEntry("eval_loss", 1.25)
        .containsEntry("perplexity", 9.0);
    assertThat(seen.get(2).time).isEqualTo("NOW");
    assertThat(seen.get(2).metrics).isNull();
  }

  @Test
  void pvcUrisAreReportedAsTheUserWroteThem() {
    UnaryOperator<String> uris =
        io.kubetune.operator.model.FineTuneJobModel.userUris("pvc://model-store/checkpoints/chat");
    assertThat(
            uris.apply("file:///var/run/kubetune/pvc/model-store/checkpoints/chat/step-000000050/"))
        .isEqualTo("pvc://model-store/checkpoints/chat/step-000000050/");
    assertThat(
            io.kubetune.operator.model.FineTuneJobModel.userUris("s3://b/p/")
                .apply("s3://b/p/step-000000050/"))
        .isEqualTo("s3://b/p/step-000000050/");
    assertThat(uris.apply("file:///elsewhere/step-1/")).isEqualTo("file:///elsewhere/step-1/");
  }

  @Test
  void mergesDedupesByStepAndSortsByStep() {
    Ledger ledger =
        CheckpointLedger.merge(
            EMPTY,
            List.of(record(200, null), record(100, Map.of("eval_loss", 2.0))),
            EvalMetric.EVAL_LOSS);
    // The same step again (a re-read log, or the resume line of the next attempt): one entry,
    // first time kept, missing metrics filled in.
    CheckpointRecord again = record(200, Map.of("eval_loss", 1.0));
    again.time = "LATER";
    ledger =
        CheckpointLedger.merge(ledger, List.of(again, record(100, null)), EvalMetric.EVAL_LOSS);

    assertThat(steps(ledger.checkpoints())).containsExactly(100L, 200L);
    assertThat(ledger.checkpoints().get(1).time).isEqualTo("T200");
    assertThat(ledger.checkpoints().get(1).metrics).containsEntry("eval_loss", 1.0);
    assertThat(ledger.checkpoints().get(0).metrics).containsEntry("eval_loss", 2.0);
    assertThat(ledger.latest().step).isEqualTo(200L);
    assertThat(ledger.best().step).isEqualTo(200L);
  }

  @Test
  void boundedToTheNewestEntriesButTheBestStaysReported() {
    List<CheckpointRecord> observed = new ArrayList<>();
    for (long step = 1; step <= 25; step++) {
      // Step 3 is the best eval_loss of the run; later ones only get worse.
      observed.add(record(step * 10, Map.of("eval_loss", step == 3 ? 0.5 : 1.0 + step)));
    }
    Ledger ledger = CheckpointLedger.merge(EMPTY, observed, EvalMetric.EVAL_LOSS);

    assertThat(ledger.checkpoints()).hasSize(CheckpointLedger.MAX_ENTRIES);
    assertThat(steps(ledger.checkpoints()))
        .containsExactlyElementsOf(
            LongStream.rangeClosed(16, 25).map(s -> s * 10).boxed().toList());
    assertThat(ledger.latest().step).isEqualTo(250L);
    assertThat(ledger.best().step).isEqualTo(30L);
    assertThat(ledger.best().metrics).containsEntry("eval_loss", 0.5);

    // Later merges do not forget it although it is no longer in checkpoints[].
    Ledger later =
        CheckpointLedger.merge(
            ledger, List.of(record(260, Map.of("eval_loss", 0.9))), EvalMetric.EVAL_LOSS);
    assertThat(later.best().step).isEqualTo(30L);
    assertThat(steps(later.checkpoints())).startsWith(170L).endsWith(260L).hasSize(10);

    // Until a better one shows up.
    Ledger better =
        CheckpointLedger.merge(
            later, List.of(record(270, Map.of("eval_loss", 0.4))), EvalMetric.EVAL_LOSS);
    assertThat(better.best().step).isEqualTo(270L);
  }

  @Test
  void latestNeverMovesBackwardsWhenAnOlderLineShowsUp() {
    Ledger ledger =
        CheckpointLedger.merge(
            EMPTY, List.of(record(100, null), record(300, null)), EvalMetric.EVAL_LOSS);
    Ledger after = CheckpointLedger.merge(ledger, List.of(record(200, null)), EvalMetric.EVAL_LOSS);

    assertThat(after.latest().step).isEqualTo(300L);
    assertThat(steps(after.checkpoints())).containsExactly(100L, 200L, 300L);

    // Even an old line that is older than everything kept does not disturb anything.
    Ledger full = ledger;
    for (long step = 400; step <= 1400; step += 100) {
      full = CheckpointLedger.merge(full, List.of(record(step, null)), EvalMetric.EVAL_LOSS);
    }
    Ledger stale = CheckpointLedger.merge(full, List.of(record(50, null)), EvalMetric.EVAL_LOSS);
    assertThat(Json.canonical(stale)).isEqualTo(Json.canonical(full));
    assertThat(stale.latest().step).isEqualTo(1400L);
  }

  @Test
  void bestFollowsTheMetricsDirectionAndOnlyAmongCheckpointsWithTheMetric() {
    List<CheckpointRecord> observed =
        List.of(
            record(10, Map.of("accuracy", 0.7, "eval_loss", 0.9)),
            record(20, Map.of("accuracy", 0.8, "eval_loss", 1.1)),
            record(30, Map.of("eval_loss", 0.5)),
            record(40, null));

    assertThat(CheckpointLedger.merge(EMPTY, observed, EvalMetric.ACCURACY).best().step)
        .isEqualTo(20L);
    assertThat(CheckpointLedger.merge(EMPTY, observed, EvalMetric.EVAL_LOSS).best().step)
        .isEqualTo(30L);
    assertThat(CheckpointLedger.merge(EMPTY, observed, EvalMetric.F1).best()).isNull();

    // Ties go to the newer step, as in the trainer's retention (so the pointer is one it keeps).
    List<CheckpointRecord> tied =
        List.of(record(10, Map.of("eval_loss", 0.5)), record(20, Map.of("eval_loss", 0.5)));
    assertThat(CheckpointLedger.merge(EMPTY, tied, EvalMetric.EVAL_LOSS).best().step)
        .isEqualTo(20L);
  }

  @Test
  void theSameObservationsAgainChangeNothing() {
    String log = checkpointLine(100, 1.3) + "\n" + checkpointLine(200, 1.1) + "\n";
    Ledger first =
        CheckpointLedger.merge(
            EMPTY,
            CheckpointLedger.fromLog(TrainerEvent.parseLog(log), UnaryOperator.identity(), "T1"),
            EvalMetric.EVAL_LOSS);
    Ledger again =
        CheckpointLedger.merge(
            first,
            CheckpointLedger.fromLog(TrainerEvent.parseLog(log), UnaryOperator.identity(), "T2"),
            EvalMetric.EVAL_LOSS);
    assertThat(Json.canonical(again)).isEqualTo(Json.canonical(first));

    Ledger nothing = CheckpointLedger.merge(EMPTY, List.of(), EvalMetric.EVAL_LOSS);
    assertThat(nothing.checkpoints()).isNull();
    assertThat(nothing.latest()).isNull();
    assertThat(nothing.best()).isNull();
  }

  static String skippedResumeLine(long resumed, long... skipped) {
    StringBuilder line = new StringBuilder("{\"event\":\"resume\",\"step\":" + resumed);
    if (resumed > 0) {
      line.append(
              String.format(
                  java.util.Locale.ROOT, ",\"uri\":\"s3://ckpt/run/step-%09d/\"", resumed))
          .append(",\"time\":\"2025-01-07T10:00:00Z\"");
    }
    line.append(",\"skipped\":[");
    for (int i = 0; i < skipped.length; i++) {
      line.append(i == 0 ? "" : ",")
          .append(
              String.format(
                  java.util.Locale.ROOT,
                  "{\"step\":%d,\"uri\":\"s3://ckpt/run/step-%09d/\",\"reason\":\"checksum"
                      + " mismatch\"}",
                  skipped[i],
                  skipped[i]));
    }
    return line.append("]}").toString();
  }

  /** What the status aggregator does with a log tail. */
  static Ledger read(Ledger previous, String log, String now) {
    return CheckpointLedger.merge(
        previous,
        CheckpointLedger.rejectionAtResume(TrainerEvent.parseLog(log)),
        CheckpointLedger.fromLog(TrainerEvent.parseLog(log), UnaryOperator.identity(), now),
        EvalMetric.EVAL_LOSS);
  }

  static List<String> rejected(List<CheckpointRecord> records) {
    return records.stream().map(r -> r.step + ":" + r.rejected).toList();
  }

  @Test
  void aResumeThatSkippedNewerCheckpointsMarksThemAndLatestIsTheResumedOne() {
    // The previous pod committed 30, 40, 50 and 60; 50 is the best, 60 the latest.
    Ledger before =
        read(
            EMPTY,
            String.join(
                "\n",
                checkpointLine(30, 1.3),
                checkpointLine(40, 1.2),
                checkpointLine(50, 1.0),
                checkpointLine(60, 1.1)),
            "T0");
    assertThat(before.latest().step).isEqualTo(60L);
    assertThat(before.best().step).isEqualTo(50L);

    // The next pod finds 50 corrupt and resumes from 40 (60 is gone from storage).
    String log = skippedResumeLine(40, 50);
    assertThat(CheckpointLedger.rejectionAtResume(TrainerEvent.parseLog(log)))
        .hasValueSatisfying(r -> assertThat(r.resumedFrom()).isEqualTo(40L));
    Ledger after = read(before, log, "T1");
    // Kept as history, marked: checkpoints[] never shrinks.
    assertThat(rejected(after.checkpoints()))
        .containsExactly(
            "30:null",
            "40:null",
            "50:checksum mismatch",
            "60:not found when the trainer resumed from step 40");
    assertThat(after.latest().step).isEqualTo(40L);
    assertThat(after.latest().uri).isEqualTo("s3://ckpt/run/step-000000040/");
    assertThat(after.latest().rejected).isNull();
    assertThat(after.best().step).isEqualTo(40L);

    // Re-reading the same tail changes nothing; nor does a tail the resume line has left.
    assertThat(Json.canonical(read(after, log, "T2"))).isEqualTo(Json.canonical(after));
    assertThat(Json.canonical(read(after, checkpointLine(40, 1.2), "T2")))
        .isEqualTo(Json.canonical(after));

    // It commits 50 again (a new, intact folder): that replaces the rejected entry, also on
    // every re-read while the resume line is still in the tail.
    String later = log + "\n" + checkpointLine(50, 0.9).replace("10:00:50.5Z", "11:00:00Z");
    Ledger recommitted = read(after, later, "T3");
    assertThat(rejected(recommitted.checkpoints()))
        .containsExactly(
            "30:null", "40:null", "50:null", "60:not found when the trainer resumed from step 40");
    assertThat(recommitted.latest().step).isEqualTo(50L);
    assertThat(recommitted.latest().time).isEqualTo("2025-01-07T11:00:00Z");
    assertThat(recommitted.latest().metrics).containsEntry("eval_loss", 0.9);
    assertThat(recommitted.best().step).isEqualTo(50L);
    assertThat(Json.canonical(read(recommitted, later, "T4")))
        .isEqualTo(Json.canonical(recommitted));
  }

  @Test
  void aResumeWithoutSkippedNeverMovesLatestBack() {
    Ledger before = read(EMPTY, checkpointLine(50, 1.0), "T0");
    String log = "{\"event\":\"resume\",\"step\":40,\"uri\":\"s3://ckpt/run/step-000000040/\"}";
    assertThat(CheckpointLedger.rejectionAtResume(TrainerEvent.parseLog(log))).isEmpty();
    Ledger after = read(before, log, "T1");
    assertThat(after.latest().step).isEqualTo(50L);
    assertThat(after.checkpoints()).allMatch(r -> r.rejected == null);
    // An empty skipped list is no rejection either.
    String empty = log.replace("}", ",\"skipped\":[]}");
    assertThat(CheckpointLedger.rejectionAtResume(TrainerEvent.parseLog(empty))).isEmpty();
  }

  @Test
  void whenEveryCheckpointWasRejectedTheRunStartedOverWithoutOne() {
    Ledger before = read(EMPTY, checkpointLine(40, 1.2) + "\n" + checkpointLine(50, 1.0), "T0");
    String log = skippedResumeLine(0, 50, 40);
    // step 0 without a uri is not a checkpoint
    assertThat(CheckpointLedger.fromLog(TrainerEvent.parseLog(log), UnaryOperator.identity(), "T1"))
        .isEmpty();
    Ledger after = read(before, log, "T1");
    assertThat(rejected(after.checkpoints()))
        .containsExactly("40:checksum mismatch", "50:checksum mismatch");
    assertThat(after.latest()).isNull();
    assertThat(after.best()).isNull();
    assertThat(Json.canonical(read(after, log, "T2"))).isEqualTo(Json.canonical(after));
  }
}
