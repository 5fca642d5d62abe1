package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Keys and values of positions already processed, per layer, so generation feeds one new token per
 * step. Arrays live in the cache's own manager; earlier ones are closed as they are replaced.
 */
public final class KvCache implements AutoCloseable {
  private final NDManager manager;
  private final NDArray[] keys;
  private final NDArray[] values;
  private int length;

  public KvCache(NDManager parent, int layers) {
    this.manager = parent.newSubManager();
    this.keys = new NDArray[layers];
    this.values = new NDArray[layers];
  }

  /** Positions already cached. */
  public int length() {
    return length;
  }

  /** Appends this step's keys/values (batch, kvHeads, seq, headDim); returns the full ones. */
  NDArray[] append(int layer, NDArray k, NDArray v) {
    NDArray fullK = keys[layer] == null ? k : keys[layer].concat(k, 2);
    NDArray fullV = values[layer] == null ? v : values[layer].concat(v, 2);
    // concat attaches its result to the cache's manager; hand it to the step so it is freed
    // with the step and only the duplicate below stays.
    fullK.attach(k.getManager());
    fullV.attach(v.getManager());
    NDArray oldK = keys[layer];
    NDArray oldV = values[layer];
    keys[layer] = fullK.duplicate();
    values[layer] = fullV.duplicate();
    keys[layer].attach(manager);
    values[layer].attach(manager);
    if (oldK != null) {
      oldK.close();
      oldV.close();
    }
    return new NDArray[] {fullK, fullV};
  }

  void advance(int seq) {
    length += seq;
  }

  @Override
  public void close() {
    manager.close();
  }
}
