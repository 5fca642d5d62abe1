package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
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

  /** The vocabulary-wide loss kernels, compiled on first use in the model's manager. */
  private LogitKernels logitKernels;

  private boolean logitKernelsBf16;

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
   * Differentiates one micro-batch's {@link #microBatchLoss} into the trained arrays' gradients and
   * returns its value; with {@code recompute}, through {@link LlamaModel#backwardWithRecomputation}
   * (gradient checkpointing: the same gradients, one layer's activations alive at a time, a second
   * forward pass).
   */
  float accumulateGradients(
      NDManager scope,
      Batch batch,
      int targetsInStep,
      GradientCollector collector,
      boolean recompute) {
    NDArray loss;
    if (recompute) {
      loss =
          model.backwardWithRecomputation(
              batch.tokens(scope),
              hidden ->
                  nllOfHidden(hidden, scope, batch, true, null)
                      .div(LlamaModel.scalar(scope, targetsInStep)),
              collector);
    } else {
      loss = microBatchLoss(scope, batch, targetsInStep);
      float value = loss.getFloat();
      if (!Float.isFinite(value)) {
        return value;
      }
      collector.backward(loss);
    }
    return loss.getFloat();
  }

  /**
   * Summed negative log-likelihood of the batch's targets (next tokens, or the class label). When
   * {@code predictions} is given, the predicted class of each row is written into it.
   */
  NDArray negativeLogLikelihood(NDManager scope, Batch batch, boolean training, int[] predictions) {
    return nllOfHidden(
        model.hiddenStates(batch.tokens(scope), null, training),
        scope,
        batch,
        training,
        predictions);
  }

  /** {@link #negativeLogLikelihood} of the final-normed hidden states. */
  private NDArray nllOfHidden(
      NDArray hidden, NDManager scope, Batch batch, boolean training, int[] predictions) {
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
    boolean bf16Head = model.lmHeadIsBf16();
    if (logitKernels == null || logitKernelsBf16 != bf16Head) {
      logitKernels = LogitKernels.compile(model.manager(), bf16Head);
      logitKernelsBf16 = bf16Head;
    }
    return ChunkedCrossEntropy.summedNll(
        hidden,
        model.lmHead(),
        bf16Head ? model.bf16Ops() : null,
        batch.targets,
        batch.targetWeights,
        scope,
        training,
        logitKernels);
  }
}
