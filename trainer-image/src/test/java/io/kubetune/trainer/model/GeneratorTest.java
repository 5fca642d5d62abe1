package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GeneratorTest {

  @Test
  void greedyPicksTheArgmax() {
    float[] logits = {0.1f, 3f, -1f, 2.9f};
    assertThat(Generator.pick(logits, Generator.Settings.greedy(1), new Random(1))).isEqualTo(1);
  }

  @Test
  void topPSamplesOnlyFromTheNucleus() {
    // Probabilities ~ 0.64, 0.24, 0.09, 0.03: top-p 0.8 keeps the first two tokens only.
    float[] logits = {3f, 2f, 1f, 0f};
    Generator.Settings settings = new Generator.Settings(1, 1.0, 0.8, 0);
    Random random = new Random(7);
    Set<Long> seen = new HashSet<>();
    for (int i = 0; i < 500; i++) {
      seen.add(Generator.pick(logits, settings, random));
    }
    assertThat(seen).containsExactlyInAnyOrder(0L, 1L);
  }

  @Test
  void lowTemperatureConcentratesOnTheBestToken() {
    float[] logits = {1f, 1.5f, 0.5f};
    Generator.Settings cold = new Generator.Settings(1, 0.01, 1.0, 0);
    Random random = new Random(3);
    for (int i = 0; i < 100; i++) {
      assertThat(Generator.pick(logits, cold, random)).isEqualTo(1);
    }
  }
}
