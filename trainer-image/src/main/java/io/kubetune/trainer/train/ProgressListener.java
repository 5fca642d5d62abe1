package io.kubetune.trainer.train;

import static io.kubetune.trainer.train.Rounding.round;

import io.kubetune.api.trainer.TrainerEvent;

/** Emits a {@code progress} event after every step: loss, LR, grad norm, throughput and ETA. */
final class ProgressListener implements TrainingListener {
  private final ProgressReporter progress;

  ProgressListener(ProgressReporter progress) {
    this.progress = progress;
  }

  @Override
  public void onStep(Step s) {
    double tokensPerSecond = s.tokensThisRun / s.secondsThisRun;
    progress.emit(
        new TrainerEvent.Progress(
            s.step(),
            s.totalSteps,
            round(s.epoch),
            round(s.loss),
            s.learningRate,
            round(s.gradNorm),
            round(tokensPerSecond),
            round(s.secondsThisRun / s.stepsThisRun * (s.totalSteps - s.step()))));
  }
}
