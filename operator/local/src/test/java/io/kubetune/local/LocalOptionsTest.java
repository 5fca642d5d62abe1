package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class LocalOptionsTest {
  private static final String QUICKSTART =
      KubeTuneLocal.repoRoot().resolve("examples/quickstart.yaml").toString();

  @Test
  void clusterRunsOnTheRealControlPlane() {
    KubeTuneLocal.Options options =
        KubeTuneLocal.parse(new String[] {"local", "--cluster", "--steps", "20", QUICKSTART});
    assertThat(options.cluster()).isTrue();
    assertThat(options.steps()).isEqualTo(20);
    assertThat(KubeTuneLocal.parse(new String[] {"local", QUICKSTART}).cluster()).isFalse();
  }

  @Test
  void cleanWouldWipeTheRunningControlPlane() {
    assertThatThrownBy(
            () -> KubeTuneLocal.parse(new String[] {"local", "--cluster", "--clean", QUICKSTART}))
        .hasMessageContaining("--clean")
        .hasMessageContaining("./kubetune cluster stop");
  }
}
