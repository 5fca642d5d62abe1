package io.kubetune.trainer.train;

import ai.djl.pytorch.jni.JniUtils;
import io.kubetune.trainer.model.LlamaConfig;

/**
 * Intra-op threads for a model. On tiny models every op is a few microseconds of work, and
 * libtorch's worker threads cost more than they save (measured here: 36k tokens/s with one thread,
 * 1.9k with two on a busy 2-core machine, for the 93k-parameter example model). Large models need
 * every core for their matrix products. Applies only when the thread count was chosen automatically
 * (see TrainerCli), never over OMP_NUM_THREADS or an explicit property.
 */
public final class EngineThreads {
  /** Set by the CLI when it picked the thread count itself. */
  public static final String AUTO_PROPERTY = "kubetune.threads.auto";

  /** Below this hidden size per-op overhead dominates and one thread is fastest. */
  static final int SINGLE_THREAD_BELOW_HIDDEN = 256;

  private EngineThreads() {}

  public static void tuneFor(LlamaConfig config) {
    if (!Boolean.getBoolean(AUTO_PROPERTY)) {
      return;
    }
    if (config.hiddenSize() < SINGLE_THREAD_BELOW_HIDDEN) {
      JniUtils.setNumThreads(1);
    }
  }
}
