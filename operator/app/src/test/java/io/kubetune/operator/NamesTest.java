package io.kubetune.operator;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class NamesTest {
  @Test
  void shortNamesGetAPlainSuffix() {
    assertThat(Names.trainingJob(TestResources.minimal("demo"))).isEqualTo("demo-train");
    assertThat(Names.trainerConfigMap(TestResources.minimal("demo")))
        .isEqualTo("demo-trainer-config");
  }

  @Test
  void longNamesAreShortenedStablyAndStayDistinct() {
    String a = "a".repeat(60);
    String b = "a".repeat(59) + "b";
    String jobA = Names.trainingJob(TestResources.minimal(a));
    String jobB = Names.trainingJob(TestResources.minimal(b));
    assertThat(jobA).hasSizeLessThanOrEqualTo(63).endsWith("-train");
    assertThat(jobA).isEqualTo(Names.trainingJob(TestResources.minimal(a)));
    assertThat(jobA).isNotEqualTo(jobB);
  }
}
