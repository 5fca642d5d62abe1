package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopSequencesTest {
  @Test
  void cutsAtTheEarliestStopString() {
    StopSequences stops = new StopSequences(List.of("###", "\n\n"));
    assertThat(stops.stopIndex("abc\n\ndef###")).isEqualTo(3);
    assertThat(stops.stopIndex("abc")).isEqualTo(-1);
  }

  @Test
  void holdsBackATailThatMayGrowIntoAStopString() {
    StopSequences stops = new StopSequences(List.of("END"));
    assertThat(stops.safeLength("hello E")).isEqualTo(6);
    assertThat(stops.safeLength("hello EN")).isEqualTo(6);
    assertThat(stops.safeLength("hello ENX")).isEqualTo(9);
    assertThat(new StopSequences(List.of()).safeLength("abc")).isEqualTo(3);
  }

  @Test
  void holdsBackAnIncompleteUtf8Character() {
    assertThat(new StopSequences(List.of()).safeLength("caf\uFFFD")).isEqualTo(3);
  }
}
