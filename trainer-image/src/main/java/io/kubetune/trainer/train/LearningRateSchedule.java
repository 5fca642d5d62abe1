package io.kubetune.trainer.train;

/**
 * Linear warmup from 0 then cosine decay to 0, as transformers' {@code
 * get_cosine_schedule_with_warmup}. Steps count from 0.
 */
public record LearningRateSchedule(double peak, int warmupSteps, long totalSteps) {

  public double at(long step) {
    if (step < warmupSteps) {
      return peak * step / Math.max(1, warmupSteps);
    }
    double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    return peak * 0.5 * (1 + Math.cos(Math.PI * Math.min(1.0, progress)));
  }
}
