package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
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
    assertThatThrownBy(() -> recent.feedback("a", 1.0, false))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status()).isEqualTo(404);
              assertThat(e.param()).isEqualTo("id");
              assertThat(e.getMessage())
                  .contains("no request 'a' among the last 2", "--feedback-memory");
            });
    assertThat(recent.feedback("b", 1.0, false)).isSameAs(canary);
    assertThat(recent.feedback("c", 0.0, true)).isSameAs(canary);
    assertThat(canary.scores()).isEqualTo(2);
    assertThat(canary.scoreMean()).isEqualTo(0.5);
    assertThat(canary.corrections()).isEqualTo(1);
  }

  @Test
  void eachAnswerTakesFeedbackOnce() {
    RecentRequests recent = new RecentRequests(10);
    Variants.Stats stable = stats(Variants.Variant.STABLE);
    recent.answered("a", stable);
    recent.feedback("a", 1.0, false);
    assertThatThrownBy(() -> recent.feedback("a", 0.0, false))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.status()).isEqualTo(409));
    assertThat(stable.scores()).isEqualTo(1);
    assertThat(stable.scoreMean()).isEqualTo(1.0);
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
