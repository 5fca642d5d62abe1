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

  @Test
  void comparesBaseAndTunedOnEveryMetricWithItsDirection() throws Exception {
    var json = new com.fasterxml.jackson.databind.ObjectMapper();
    var base =
        json.readTree(
            "{\"step\":0,\"epoch\":0,\"eval_loss\":5.7,\"exact_match\":0.0,\"bleu\":1.5,"
                + "\"rouge_l\":0.12}");
    var tuned =
        json.readTree(
            "{\"step\":60,\"epoch\":2,\"eval_loss\":0.41,\"exact_match\":0.99,"
                + "\"bleu\":98.2,\"rouge_l\":0.995,\"extra\":3}");
    assertThat(ProgressView.comparison(base, tuned))
        .containsExactly(
            "  held-out               base        tuned",
            "  eval_loss             5.700       0.4100   lower is better",
            "  exact_match           0.000       0.9900   higher is better",
            "  bleu                  1.500        98.20   higher is better",
            "  rouge_l              0.1200       0.9950   higher is better",
            "  extra                   n/a        3.000");
  }
}
