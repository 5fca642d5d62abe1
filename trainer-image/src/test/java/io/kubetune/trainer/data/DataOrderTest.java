package io.kubetune.trainer.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DataOrderTest {

  @Test
  void resumingAtAStepContinuesWithExactlyTheSameBatches() {
    DataOrder original = new DataOrder(42, 37, 4);
    List<int[]> uninterrupted = new ArrayList<>();
    for (long k = 0; k < 50; k++) {
      uninterrupted.add(original.batch(k));
    }
    // A new process that only knows (seed, step): step 7 with accumulation 3 -> micro-batch 21.
    DataOrder resumed = new DataOrder(42, 37, 4);
    for (long k = 21; k < 50; k++) {
      assertThat(resumed.batch(k)).containsExactly(uninterrupted.get((int) k));
    }
  }

  @Test
  void everyEpochCoversEveryExampleOnceInAFreshOrder() {
    DataOrder order = new DataOrder(7, 10, 3);
    assertThat(order.batchesPerEpoch()).isEqualTo(4);
    for (int epoch = 0; epoch < 2; epoch++) {
      Set<Integer> seen = new HashSet<>();
      for (int b = 0; b < 4; b++) {
        for (int i : order.batch(epoch * 4L + b)) {
          assertThat(seen.add(i)).isTrue();
        }
      }
      assertThat(seen).hasSize(10);
    }
    assertThat(order.batch(0)).isNotEqualTo(order.batch(4));
    assertThat(new DataOrder(8, 10, 3).batch(0)).isNotEqualTo(order.batch(0));
  }

  @Test
  void validationSplitIsSeededAndDisjoint() {
    int[][] a = DataOrder.split(1, 100, 0.1);
    int[][] b = DataOrder.split(1, 100, 0.1);
    assertThat(a[1]).hasSize(10).containsExactly(b[1]);
    Set<Integer> train = new HashSet<>();
    for (int i : a[0]) {
      train.add(i);
    }
    for (int i : a[1]) {
      assertThat(train).doesNotContain(i);
    }
    assertThat(a[0].length + a[1].length).isEqualTo(100);
  }
}
