package io.kubetune.trainer.train;

/** Figures in events, metrics and checkpoints are rounded to 6 decimals. */
final class Rounding {
  private Rounding() {}

  static double round(double value) {
    return Math.round(value * 1e6) / 1e6;
  }
}
