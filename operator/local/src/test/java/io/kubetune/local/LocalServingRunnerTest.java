package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class LocalServingRunnerTest {
  @Test
  void eachLocalReplicaGetsItsOwnPortOnLoopbackInsteadOfThePodPort() {
    assertThat(
            LocalServingRunner.withPort(List.of("serve", "--model", "/m", "--port", "8000"), 41234))
        .containsExactly("serve", "--model", "/m", "--port", "41234", "--host", "127.0.0.1");
    assertThat(LocalServingRunner.withPort(List.of("serve", "--host", "0.0.0.0"), 5))
        .containsExactly("serve", "--host", "0.0.0.0", "--port", "5");
  }

  @Test
  void aLocalReplicaGetsAShortShutdownDelayUnlessTheContainerSetsOne() {
    assertThat(LocalServingRunner.withShutdownDelay(List.of("serve", "--port", "5")))
        .containsExactly("serve", "--port", "5", "--shutdown-delay-seconds", "1");
    assertThat(
            LocalServingRunner.withShutdownDelay(List.of("serve", "--shutdown-delay-seconds", "0")))
        .containsExactly("serve", "--shutdown-delay-seconds", "0");
  }
}
