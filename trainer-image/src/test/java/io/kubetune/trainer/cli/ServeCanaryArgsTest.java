package io.kubetune.trainer.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.serve.ModelRepository;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code trainer serve --canary NAME=URI --canary-digest SHA --canary-weight N}. */
class ServeCanaryArgsTest {
  static List<ModelRepository.AdapterSource> stable() {
    return Serve.adapterSources(List.of("support=/models/run-1"), List.of("aaa"));
  }

  @Test
  void theCanaryIsLoadedNextToTheAdapterItWouldReplaceUnderNameColonCanary() {
    List<ModelRepository.AdapterSource> sources = stable();
    assertThat(Serve.addCanary(sources, "support=/models/run-2", "bbb", 25))
        .containsExactly(java.util.Map.entry("support", 25));
    assertThat(sources)
        .containsExactly(
            new ModelRepository.AdapterSource("support", "/models/run-1", "aaa"),
            new ModelRepository.AdapterSource("support:canary", "/models/run-2", "bbb"));
    List<ModelRepository.AdapterSource> defaults = stable();
    assertThat(Serve.addCanary(defaults, "support=/models/run-2", null, null))
        .containsEntry("support", 10);
    assertThat(Serve.addCanary(stable(), null, null, null)).isEmpty();
  }

  @Test
  void badCanaryArgumentsAreRefusedNamingTheOptionAndTheFix() {
    assertThatThrownBy(() -> Serve.addCanary(stable(), "other=/m", null, null))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("--canary other=...: no --adapter is named other");
    assertThatThrownBy(() -> Serve.addCanary(stable(), "support", null, null))
        .hasMessageContaining("expected NAME=URI");
    assertThatThrownBy(() -> Serve.addCanary(stable(), "support=/m", null, 100))
        .hasMessageContaining("--canary-weight is 100; use an integer in [1, 99]");
    assertThatThrownBy(() -> Serve.addCanary(stable(), "support=/m", null, 0))
        .hasMessageContaining("--canary-weight is 0");
    assertThatThrownBy(() -> Serve.addCanary(stable(), null, "bbb", null))
        .hasMessageContaining("need --canary NAME=URI");
    assertThatThrownBy(() -> Serve.adapterSources(List.of("a:b=/m"), List.of()))
        .hasMessageContaining("may not hold ':'");
  }
}
