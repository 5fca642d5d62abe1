package io.kubetune.api.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TrainerEventTest {

  private static Map<String, Double> metrics(Object... kv) {
    Map<String, Double> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], ((Number) kv[i + 1]).doubleValue());
    }
    return m;
  }

  static final List<TrainerEvent> EVERY_KIND =
      List.of(
          new TrainerEvent.Loaded("qwen2", 494032768L, 290L, 1L, 988097536L, List.of("BF16"), 2.4),
          new TrainerEvent.Progress(10L, 40L, 0.25, 2.31234, 1e-4, 0.71, 512.7, 3660.4),
          new TrainerEvent.Eval(10L, metrics("eval_loss", 2.5, "perplexity", 12.2, "f1", 0.5)),
          new TrainerEvent.Checkpoint(
              10L, "s3://b/ckpt/step-10/", "2026-01-01T00:00:00Z", metrics("eval_loss", 2.5)),
          new TrainerEvent.Checkpoint(20L, "file:///tmp/step-20/", "2026-01-01T00:00:01Z", null),
          new TrainerEvent.Resume(
              10L,
              "s3://b/ckpt/step-10/",
              "2026-01-01T00:00:00Z",
              metrics("eval_loss", 2.5),
              List.of(new TrainerEvent.Skipped(20L, "s3://b/ckpt/step-20/", "digest mismatch"))),
          new TrainerEvent.Resume(
              0L,
              null,
              null,
              null,
              List.of(new TrainerEvent.Skipped(10L, "s3://b/ckpt/step-10/", "partial"))),
          new TrainerEvent.Warning(
              TrainerEvent.Warning.CHECKPOINT_FAILED, 30L, 2L, 20L, "disk full"),
          new TrainerEvent.Preempted(7L),
          new TrainerEvent.Done(40L, false, "s3://b/out/", metrics("eval_loss", 1.9)));

  @Test
  void everyKindRoundTripsThroughOneLine() {
    for (TrainerEvent event : EVERY_KIND) {
      String line = TrainerEvent.toLine(event);
      assertThat(line).doesNotContain("\n").startsWith("{\"event\":\"" + event.name() + "\"");
      assertThat(TrainerEvent.parse(line)).contains(event);
    }
    assertThat(EVERY_KIND.stream().map(Object::getClass).distinct())
        .hasSize(TrainerEvent.class.getPermittedSubclasses().length - 1); // all but Unknown
  }

  @Test
  void aLogTailParsesToItsEventsInOrderSkippingOtherLines() {
    StringBuilder log = new StringBuilder("Picked up JAVA_TOOL_OPTIONS\n");
    for (TrainerEvent event : EVERY_KIND) {
      log.append(TrainerEvent.toLine(event)).append('\n');
    }
    log.append("{\"event\":\"progress\",\"step\":11,\"trunc"); // cut off by the tail
    assertThat(TrainerEvent.parseLog(log.toString())).isEqualTo(EVERY_KIND);
  }

  @Test
  void nonFiniteNumbersAreWrittenAsStringsAndReadBack() {
    TrainerEvent.Progress p =
        new TrainerEvent.Progress(
            1L, 2L, 0.0, Double.NaN, 1e-3, Double.POSITIVE_INFINITY, 1.0, 1.0);
    String line = TrainerEvent.toLine(p);
    assertThat(line).contains("\"loss\":\"NaN\"").contains("\"gradNorm\":\"Infinity\"");
    TrainerEvent.Progress back = (TrainerEvent.Progress) TrainerEvent.parse(line).orElseThrow();
    assertThat(back.loss()).isNaN();
    assertThat(back.gradNorm()).isInfinite();
  }

  @Test
  void anUnknownEventIsKeptAsUnknownAndWrittenBackUnchanged() {
    String line = "{\"event\":\"listening\",\"port\":8080}";
    TrainerEvent event = TrainerEvent.parse(line).orElseThrow();
    assertThat(event).isEqualTo(new TrainerEvent.Unknown("listening", line));
    assertThat(TrainerEvent.toLine(event)).isEqualTo(line);
  }

  @Test
  void linesThatAreNotEventsAreSkipped() {
    assertThat(TrainerEvent.parse(null)).isEmpty();
    assertThat(TrainerEvent.parse("resuming from step 3")).isEmpty();
    assertThat(TrainerEvent.parse("{not json")).isEmpty();
    assertThat(TrainerEvent.parse("{\"step\":3}")).isEmpty(); // no event field
    assertThat(TrainerEvent.parse("{\"event\":null}")).isEmpty();
    assertThat(TrainerEvent.parseLog(null)).isEmpty();
  }

  @Test
  void missingOrMistypedFieldsAreNullNotDefaulted() {
    TrainerEvent event =
        TrainerEvent.parse("{\"event\":\"checkpoint\",\"step\":\"x\",\"uri\":\"file:///c/\"}")
            .orElseThrow();
    assertThat(event).isEqualTo(new TrainerEvent.Checkpoint(null, "file:///c/", null, null));
  }
}
