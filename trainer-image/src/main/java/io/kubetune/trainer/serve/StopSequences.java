package io.kubetune.trainer.serve;

import java.util.List;

/**
 * Applies OpenAI {@code stop} strings to text as it is generated. A stream must not send text that
 * may turn out to be the start of a stop string, so the tail that is a prefix of one is held back
 * until the next token decides. Pure.
 */
public final class StopSequences {
  /** Bytes of a UTF-8 sequence that can still be completed: a 4-byte sequence missing its last. */
  static final int MAX_INCOMPLETE_UTF8 = 3;

  private final List<String> stops;

  public StopSequences(List<String> stops) {
    this.stops = List.copyOf(stops);
  }

  /** Where the text must be cut, or -1 when no stop string occurs in it. */
  public int stopIndex(String text) {
    int first = -1;
    for (String stop : stops) {
      int i = text.indexOf(stop);
      if (i >= 0 && (first < 0 || i < first)) {
        first = i;
      }
    }
    return first;
  }

  /**
   * Length of the prefix of {@code text} that is safe to send: everything except a trailing part
   * that could still grow into a stop string, and except an incomplete UTF-8 sequence (decoded as
   * U+FFFD) at the end. Such a sequence is at most {@value #MAX_INCOMPLETE_UTF8} bytes, so no more
   * U+FFFD than that are held: a model that emits invalid bytes (an undertrained one does) still
   * streams instead of sending everything at the end.
   */
  public int safeLength(String text) {
    int end = text.length();
    while (end > 0
        && text.length() - end < MAX_INCOMPLETE_UTF8
        && text.charAt(end - 1) == '\uFFFD') {
      end--;
    }
    int held = 0;
    for (String stop : stops) {
      for (int n = Math.min(stop.length() - 1, end); n > held; n--) {
        if (text.regionMatches(end - n, stop, 0, n)) {
          held = n;
          break;
        }
      }
    }
    return end - held;
  }
}
