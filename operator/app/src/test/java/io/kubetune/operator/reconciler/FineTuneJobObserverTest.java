package io.kubetune.operator.reconciler;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobBuilder;
import org.junit.jupiter.api.Test;

class FineTuneJobObserverTest {
  private static Job jobControlledBy(String uid) {
    return new JobBuilder()
        .withNewMetadata()
        .withName("quickstart-train")
        .addNewOwnerReference()
        .withKind("FineTuneJob")
        .withName("quickstart")
        .withUid(uid)
        .withController(true)
        .endOwnerReference()
        .endMetadata()
        .build();
  }

  @Test
  void aChildOfAnEarlierFineTuneJobOfTheSameNameIsNotThisOnes() {
    assertThat(FineTuneJobObserver.controlledBy(jobControlledBy("uid-1"), "uid-1")).isTrue();
    // Deleted and created again: the cache may still hold the first one's Job by that name.
    assertThat(FineTuneJobObserver.controlledBy(jobControlledBy("uid-1"), "uid-2")).isFalse();
    assertThat(
            FineTuneJobObserver.controlledBy(
                new JobBuilder().withNewMetadata().endMetadata().build(), "uid-2"))
        .isTrue();
  }
}
