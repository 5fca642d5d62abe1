package io.kubetune.trainer.data;

/**
 * One tokenized record. For language modelling, {@code trainOn[t]} says whether token t is a target
 * (completion/assistant tokens); for classification, {@code label} is the class index and the head
 * reads the hidden state of the last token.
 */
public record Example(long[] tokens, boolean[] trainOn, int label) {

  public static final int NO_LABEL = -1;

  /** Number of tokens the loss is computed on. */
  public int targetCount() {
    if (label != NO_LABEL) {
      return 1;
    }
    int n = 0;
    for (int t = 1; t < tokens.length; t++) {
      if (trainOn[t]) {
        n++;
      }
    }
    return n;
  }
}
