package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.kubetune.api.v1alpha1.HyperparametersSpec.Precision;
import io.kubetune.trainer.data.DatasetFormat;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 10's bar for mixed precision: on the shipped quick-start task (examples/quickstart.yaml:
 * the tiny Llama, support tickets into five classes, LoRA on q/v) a bf16 run reaches the held-out
 * accuracy of the fp32 run within noise.
 */
class MixedPrecisionQualityTest {
  private static final Path EXAMPLES =
      Paths.get(System.getProperty("kubetune.trainer.moduleDir", ".")).resolve("../examples");

  /**
   * The noise band, in held-out accuracy (100 test tickets). fp32 runs of this task that differ
   * only in the seed (42, 43, 44) reached 0.88, 0.86 and 0.86: a spread of 0.02, two tickets. The
   * band is that spread plus one ticket. (bf16 runs at the same three seeds matched fp32 exactly.)
   */
  static final double NOISE = 0.03;

  @TempDir Path dir;

  /**
   * About 5 s in fp32 and 20-25 s in bf16 here: bf16 products are ~10x slower than fp32 on this CPU
   * (AVX2, no native bf16).
   */
  @Test
  void bf16ReachesTheFp32HeldOutAccuracyOnTheQuickStartTask() throws Exception {
    double fp32 = heldOutAccuracy(Precision.fp32, 42);
    double bf16 = heldOutAccuracy(Precision.bf16, 42);

    assertThat(fp32).as("fp32 learns the task (chance is 0.2)").isGreaterThanOrEqualTo(0.8);
    assertThat(bf16).as("bf16 within noise of fp32 (%s)", fp32).isCloseTo(fp32, within(NOISE));
  }

  /** examples/quickstart.yaml's settings (LoRA r 8 on q/v, 150 steps), with this precision. */
  private double heldOutAccuracy(Precision precision, long seed) throws Exception {
    TrainingOptions options =
        TrainingOptions.defaults(
                EXAMPLES.resolve("models/tiny-llama"),
                EXAMPLES.resolve("data/support-tickets/train.jsonl"),
                DatasetFormat.CLASSIFICATION,
                dir.resolve(precision + "-" + seed))
            .withValidation(EXAMPLES.resolve("data/support-tickets/test.jsonl"))
            .withMethod(TrainingMethod.LORA, 8, 16, List.of("q_proj", "v_proj"), 1)
            .withSchedule(150, 1, 1e-3, 16, 1, 10)
            .withMaxSequenceLength(64)
            // Evaluated before and after only (the quick-start also evaluates at 50 and 100).
            .withEvaluation(150, 0, "accuracy", true)
            .withRegularisation(0.0, 1.0, 0.0, seed)
            .withPrecision(precision);
    long started = System.nanoTime();
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      FineTuner.Result result = tuner.train();
      System.out.printf(
          "%s seed %d: accuracy %.3f -> %.3f in %.1f s%n",
          precision,
          seed,
          result.initial().metrics().get("accuracy"),
          result.last().metrics().get("accuracy"),
          (System.nanoTime() - started) / 1e9);
      return result.last().metrics().get("accuracy");
    }
  }
}
