package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.trainer.TrainerEvent;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressViewTest {

  @Test
  void rendersParsedEventsAndIgnoresOthers() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ProgressView view =
        new ProgressView(new PrintStream(bytes, true, StandardCharsets.UTF_8), false);
    String log =
        """
        {"event":"loaded","modelType":"llama","parameters":10}
        {"event":"progress","step":5,"totalSteps":10,"epoch":0.5,"loss":2.5,"lr":0.001,"tokensPerSecond":100.4,"etaSeconds":75}
        {"event":"eval","step":5,"eval_loss":2.25,"perplexity":9.4877,"accuracy":"NaN"}
        {"event":"somethingNew","step":6}
        {"event":"done","steps":10,"stoppedEarly":false,"output":"file:///o/","eval_loss":2.0}
        """;
    TrainerEvent.parseLog(log).forEach(e -> view.onEvent("pod", e));

    assertThat(bytes.toString(StandardCharsets.UTF_8))
        .isEqualTo(
            "  [###############...............] step 5/10  loss 2.5000  100 tok/s  eta 1m15s\n"
                + "  eval  eval_loss=2.250  perplexity=9.488\n");
    assertThat(view.lastProgress().step()).isEqualTo(5);
    assertThat(view.lastEval().metrics()).containsKeys("eval_loss", "perplexity");
    assertThat(view.done().steps()).isEqualTo(10);
  }
}
