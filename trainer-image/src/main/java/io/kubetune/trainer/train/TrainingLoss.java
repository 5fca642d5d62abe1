package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.kubetune.trainer.model.LlamaModel;

/**
 * The objective, in one place: the summed negative log-likelihood of a batch's targets (the next
 * tokens, or the class label through the classification head). The training loop minimises {@link
 * #microBatchLoss}; the validation evaluator reports {@link #negativeLogLikelihood} per target.
 */
final class TrainingLoss {
  private final LlamaModel model;

  /** The sequence-classification head, or null for causal language modelling. */
  private final NDArray classifierHead;

  TrainingLoss(LlamaModel model, NDArray classifierHead) {
    this.model = model;
    this.classifierHead = classifierHead;
  }

  /**
   * One micro-batch's share of an optimizer step's loss: its summed NLL divided by the targets of
   * the whole step, so accumulating over micro-batches equals one large batch.
   */
  NDArray microBatchLoss(NDManager scope, Batch batch, int targetsInStep) {
    return negativeLogLikelihood(scope, batch, true, null)
        .div(LlamaModel.scalar(scope, targetsInStep));
  }

  /**
   * Summed negative log-likelihood of the batch's targets (next tokens, or the class label). When
   * {@code predictions} is given, the predicted class of each row is written into it.
   */
  NDArray negativeLogLikelihood(NDManager scope, Batch batch, boolean training, int[] predictions) {
    NDArray hidden = model.hiddenStates(batch.tokens(scope), null, training);
    if (batch.classification()) {
      int h = model.config().hiddenSize();
      NDArray last = hidden.gather(batch.lastIndex(scope, h), 1).reshape(batch.size, h);
      NDArray scores =
          last.getNDArrayInternal().linear(last, classifierHead, null).singletonOrThrow();
      if (predictions != null) {
        long[] argMax = scores.argMax(1).toLongArray();
        for (int i = 0; i < argMax.length; i++) {
          predictions[i] = (int) argMax[i];
        }
      }
      return scores.logSoftmax(1).gather(batch.labels(scope), 1).sum().neg();
    }
    return ChunkedCrossEntropy.summedNll(
        hidden, model.lmHead(), batch.targets, batch.targetWeights, scope, training);
  }
}
