package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class RecentRequestsTest {
  static Variants.Stats stats(Variants.Variant variant) {
    return new Variants.Stats("support", variant, "abc", 10, Instant.EPOCH);
  }

  @Test
  void memoryIsBoundedAndAForgottenIdIsA404ThatSaysWhy() {
    RecentRequests recent = new RecentRequests(2);
    Variants.Stats canary = stats(Variants.Variant.CANARY);
    recent.answered("a", canary);
    recent.answered("b", canary);
    recent.answered("c", canary);
    assertThat(recent.size()).isEqualTo(2);
    assertThatThrownBy(() -> recent.feedback("a", 1.0, false, List.of()))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status()).isEqualTo(404);
              assertThat(e.param()).isEqualTo("id");
              assertThat(e.getMessage())
                  .contains("no request 'a' among the last 2", "--feedback-memory");
            });
    assertThat(recent.feedback("b", 1.0, false, List.of())).isSameAs(canary);
    assertThat(recent.feedback("c", 0.0, true, List.of())).isSameAs(canary);
    assertThat(canary.scores()).isEqualTo(2);
    assertThat(canary.scoreMean()).isEqualTo(0.5);
    assertThat(canary.corrections()).isEqualTo(1);
  }

  @Test
  void eachAnswerTakesFeedbackOnce() {
    RecentRequests recent = new RecentRequests(10);
    Variants.Stats stable = stats(Variants.Variant.STABLE);
    recent.answered("a", stable);
    recent.feedback("a", 1.0, false, List.of());
    assertThatThrownBy(() -> recent.feedback("a", 0.0, false, List.of()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.status()).isEqualTo(409));
    assertThat(stable.scores()).isEqualTo(1);
    assertThat(stable.scoreMean()).isEqualTo(1.0);
  }

  static final String RUN_1 = "1a".repeat(32);
  static final String RUN_2 = "2b".repeat(32);

  /** One serving pod's variants during a canary: run 1 stable, run 2 canary, and the base. */
  static List<Variants.Stats> pod() {
    return List.of(
        new Variants.Stats("kubetune-mini", Variants.Variant.STABLE, null, 100, Instant.EPOCH),
        new Variants.Stats("support", Variants.Variant.STABLE, RUN_1, 90, Instant.EPOCH),
        new Variants.Stats("support", Variants.Variant.CANARY, RUN_2, 10, Instant.EPOCH));
  }

  @Test
  void feedbackOnAnAnswerOfAnotherPodIsCreditedToTheSameAdapterHereOnce() {
    // Two replicas behind one Service: pod A answers, the feedback call reaches pod B.
    List<Variants.Stats> podA = pod();
    List<Variants.Stats> podB = pod();
    RecentRequests recentA = new RecentRequests(10);
    RecentRequests recentB = new RecentRequests(10);
    String canaryAnswer = ResponseIds.issue("chatcmpl", podA.get(2));
    String stableAnswer = ResponseIds.issue("clf", podA.get(1));
    String baseAnswer = ResponseIds.issue("cmpl", podA.get(0));
    recentA.answered(canaryAnswer, podA.get(2));
    recentA.answered(stableAnswer, podA.get(1));
    recentA.answered(baseAnswer, podA.get(0));
    assertThat(canaryAnswer).startsWith("chatcmpl-" + RUN_2.substring(0, 16) + "-");
    assertThat(baseAnswer).startsWith("cmpl-base-");

    assertThat(recentB.feedback(canaryAnswer, 0.0, false, podB)).isSameAs(podB.get(2));
    assertThat(recentB.feedback(stableAnswer, 1.0, true, podB)).isSameAs(podB.get(1));
    assertThat(recentB.feedback(baseAnswer, 1.0, false, podB)).isSameAs(podB.get(0));
    assertThat(podB.get(2).scores()).isEqualTo(1);
    assertThat(podB.get(2).scoreMean()).isEqualTo(0.0);
    assertThat(podB.get(1).corrections()).isEqualTo(1);
    assertThat(podA.get(2).scores()).isZero(); // counted once, by the pod that took it
    // Once per answer on the pod that took it.
    assertThatThrownBy(() -> recentB.feedback(canaryAnswer, 1.0, false, podB))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.status()).isEqualTo(409));
    assertThat(podB.get(2).scores()).isEqualTo(1);
  }

  @Test
  void anIdNamingAnAdapterThisPodDoesNotServeOrNoAdapterIsA404ThatSaysWhy() {
    RecentRequests recent = new RecentRequests(10);
    String promotedAway =
        ResponseIds.issue(
            "cmpl",
            new Variants.Stats(
                "support", Variants.Variant.STABLE, "0c".repeat(32), 100, Instant.EPOCH));
    assertThatThrownBy(() -> recent.feedback(promotedAway, 1.0, false, pod()))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status()).isEqualTo(404);
              assertThat(e.param()).isEqualTo("id");
              assertThat(e.getMessage())
                  .contains("answered by adapter 0c0c0c0c0c0c0c0c", "this pod does not serve")
                  .contains("support canary " + RUN_2.substring(0, 16));
            });
    for (String notOurs :
        new String[] {
          "cmpl-nope", "chatcmpl-" + RUN_1.substring(0, 15) + "-x", "x" + promotedAway
        }) {
      assertThatThrownBy(() -> recent.feedback(notOurs, 1.0, false, pod()))
          .as(notOurs)
          .isInstanceOfSatisfying(
              ApiException.class,
              e -> {
                assertThat(e.status()).isEqualTo(404);
                assertThat(e.getMessage()).contains("no request '" + notOurs + "' among the last");
              });
    }
    // Refused calls are not remembered: the memory holds nothing.
    assertThat(recent.size()).isZero();
  }

  @Test
  void serverErrorsCountAgainstTheVariantAndClientErrorsApart() {
    Variants.Stats canary = stats(Variants.Variant.CANARY);
    assertThat(canary.errorRate()).isZero();
    canary.answered(200, 1_000_000);
    canary.answered(200, 1_000_000);
    canary.answered(400, 1_000_000);
    canary.answered(500, 1_000_000);
    assertThat(canary.requests()).isEqualTo(4);
    assertThat(canary.errors()).isEqualTo(1);
    assertThat(canary.clientErrors()).isEqualTo(1);
    assertThat(canary.errorRate()).isEqualTo(0.25);
    assertThat(canary.latencySeconds()).isEqualTo(0.004);
  }

  @Test
  void theRecentMeanFollowsTheLastScoresAndTheRunningMeanAllOfThem() {
    Variants.Stats stable = stats(Variants.Variant.STABLE);
    assertThat(stable.scoreMean()).isNaN();
    for (int i = 0; i < Variants.RECENT_FEEDBACK; i++) {
      stable.feedback(1.0, false);
    }
    for (int i = 0; i < Variants.RECENT_FEEDBACK; i++) {
      stable.feedback(0.0, false);
    }
    assertThat(stable.scoreMean()).isEqualTo(0.5);
    assertThat(stable.recentScoreMean()).isEqualTo(0.0);
    stable.feedback(1.0, false);
    assertThat(stable.recentScoreMean()).isEqualTo(0.01);
  }
}
