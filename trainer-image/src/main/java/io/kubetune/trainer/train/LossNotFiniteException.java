package io.kubetune.trainer.train;

/** The training loss became NaN or infinite; the CLI exits with {@code LOSS_NOT_FINITE}. */
public class LossNotFiniteException extends RuntimeException {
  private final long step;

  public LossNotFiniteException(long step, float loss) {
    super(
        "training loss became "
            + loss
            + " at step "
            + step
            + "; lower hyperparameters.learningRate or set maxGradNorm");
    this.step = step;
  }

  public long step() {
    return step;
  }
}
