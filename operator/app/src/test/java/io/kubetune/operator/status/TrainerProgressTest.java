package io.kubetune.operator.status;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.trainer.TrainerEvent;
import io.kubetune.api.v1alpha1.ProgressStatus;
import org.junit.jupiter.api.Test;

class TrainerProgressTest {
  static final String LOG =
      """
      starting trainer
      {"event":"loaded","modelType":"qwen2","parameters":494032768,"tensors":290,"files":1,"bytes":988097536,"dtypes":["BF16"],"seconds":2.4}
      {"event":"eval","step":0,"eval_loss":2.5,"perplexity":12.2}
      {"event":"progress","step":9,"totalSteps":40,"epoch":0.2,"loss":2.4,"tokensPerSecond":500,"etaSeconds":3700}
      not json {
      {"event":"progress","step":10,"totalSteps":40,"epoch":0.25,"loss":2.31234,"tokensPerSecond":512.7,"etaSeconds":3660.4}
      {"event":"progress","step":11,"truncated
      """;

  @Test
  void takesTheLastCompleteProgressLine() {
    ProgressStatus p = TrainerProgress.from(TrainerEvent.parseLog(LOG), null, "T1");
    assertThat(p.step).isEqualTo(10L);
    assertThat(p.totalSteps).isEqualTo(40L);
    assertThat(p.loss).isEqualTo(2.3123);
    assertThat(p.tokensPerSecond).isEqualTo(513.0);
    assertThat(p.etaSeconds).isEqualTo(3660L);
    assertThat(p.eta).isEqualTo("1h01m");
    assertThat(p.summary).isEqualTo("10/40 (25%)");
    assertThat(p.evalLoss).isEqualTo(2.5);
    assertThat(p.updatedAt).isEqualTo("T1");
  }

  @Test
  void unchangedLogKeepsTheStatusIdentical() {
    ProgressStatus first = TrainerProgress.from(TrainerEvent.parseLog(LOG), null, "T1");
    ProgressStatus again = TrainerProgress.from(TrainerEvent.parseLog(LOG), first, "T2");
    assertThat(again).usingRecursiveComparison().isEqualTo(first);
  }

  @Test
  void noProgressLinesKeepsThePreviousProgress() {
    ProgressStatus first = TrainerProgress.from(TrainerEvent.parseLog(LOG), null, "T1");
    assertThat(TrainerProgress.from(TrainerEvent.parseLog("restarting\n"), first, "T2"))
        .isSameAs(first);
    assertThat(TrainerProgress.from(TrainerEvent.parseLog(null), first, "T2")).isSameAs(first);
  }

  @Test
  void doneLineFinishesTheRun() {
    ProgressStatus p =
        TrainerProgress.from(
            TrainerEvent.parseLog(LOG + "{\"event\":\"done\",\"steps\":40,\"eval_loss\":1.9}\n"),
            null,
            "T1");
    assertThat(p.step).isEqualTo(40L);
    assertThat(p.etaSeconds).isZero();
    assertThat(p.summary).isEqualTo("40/40 (100%)");
    assertThat(p.evalLoss).isEqualTo(1.9);
  }
}
