package io.kubetune.trainer.data;

import java.util.Arrays;
import java.util.Random;

/**
 * The seeded order of micro-batches. Batch k depends only on (seed, k), so a run resumed at
 * optimizer step s continues with exactly the batches it would have seen: k = s x accumulation.
 */
public final class DataOrder {
  private final long seed;
  private final int size;
  private final int batchSize;

  public DataOrder(long seed, int size, int batchSize) {
    this.seed = seed;
    this.size = size;
    this.batchSize = batchSize;
  }

  /** Micro-batches per epoch; the last one may be smaller. */
  public int batchesPerEpoch() {
    return (size + batchSize - 1) / batchSize;
  }

  /** Indices of the examples in micro-batch {@code k} (counted from the start of training). */
  public int[] batch(long k) {
    int epoch = (int) (k / batchesPerEpoch());
    int position = (int) (k % batchesPerEpoch());
    int[] order = permutation(epoch);
    int from = position * batchSize;
    return Arrays.copyOfRange(order, from, Math.min(size, from + batchSize));
  }

  /** Epoch as a fraction, for progress reports. */
  public double epochOf(long k) {
    return (double) k / batchesPerEpoch();
  }

  private int[] permutation(int epoch) {
    int[] order = new int[size];
    for (int i = 0; i < size; i++) {
      order[i] = i;
    }
    // Fisher-Yates with a generator derived from (seed, epoch) only.
    Random random = new Random(seed * 1_000_003L + epoch);
    for (int i = size - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    return order;
  }

  /** Seeded split of {@code size} indices into {train, validation}. */
  public static int[][] split(long seed, int size, double validationFraction) {
    int[] order = new DataOrder(seed ^ 0x5DEECE66DL, size, size).batch(0);
    int validation = Math.max(1, (int) Math.round(size * validationFraction));
    if (validation >= size) {
      validation = size - 1;
    }
    int[] val = Arrays.copyOfRange(order, 0, validation);
    int[] train = Arrays.copyOfRange(order, validation, size);
    Arrays.sort(val);
    Arrays.sort(train);
    return new int[][] {train, val};
  }
}
