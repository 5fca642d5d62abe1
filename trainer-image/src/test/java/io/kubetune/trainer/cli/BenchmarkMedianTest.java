package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import org.junit.jupiter.api.Test;

class BenchmarkMedianTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode round(double tokensPerSecond, long rss, String engine) throws Exception {
    return JSON.readTree(
        "{\"lora\": {\"tokensPerSecond\": "
            + tokensPerSecond
            + ", \"peakRssMiB\": "
            + rss
            + "}, \"engine\": \""
            + engine
            + "\", \"samples\": [1, 2], \"met\": true}");
  }

  @Test
  void everyNumberIsTheMedianOverRoundsAndTextComesFromTheFirst() throws Exception {
    JsonNode median =
        Benchmark.medianOf(
            List.of(round(100.0, 900, "a"), round(130.0, 1000, "b"), round(90.0, 2000, "c")));
    assertThat(median.get("lora").get("tokensPerSecond").asDouble()).isEqualTo(100.0);
    assertThat(median.get("lora").get("peakRssMiB").isIntegralNumber()).isTrue();
    assertThat(median.get("lora").get("peakRssMiB").asLong()).isEqualTo(1000);
    assertThat(median.get("engine").asText()).isEqualTo("a");
    assertThat(median.get("samples")).hasSize(2);
    assertThat(median.get("met").asBoolean()).isTrue();
  }

  @Test
  void anEvenNumberOfRoundsAveragesTheMiddleTwo() throws Exception {
    JsonNode median =
        Benchmark.medianOf(
            List.of(
                round(100.0, 901, "a"),
                round(130.0, 1000, "b"),
                round(90.0, 2000, "c"),
                round(120.0, 950, "d")));
    assertThat(median.get("lora").get("tokensPerSecond").asDouble()).isEqualTo(110.0);
    assertThat(median.get("lora").get("peakRssMiB").asLong()).isEqualTo(975);
  }
}
