package io.kubetune.trainer.data.jinja;

import java.util.ArrayList;
import java.util.List;
import jinjava.javax.el.ELException;

/** Python's {@code slice(start, stop, step).indices(length)}, as a list of positions. */
final class PythonSlice {
  private PythonSlice() {}

  static List<Integer> indices(int length, Long start, Long stop, Long step) {
    long by = step == null ? 1 : step;
    if (by == 0) {
      throw new ELException("slice step cannot be zero");
    }
    long from;
    long to;
    if (by > 0) {
      from = start == null ? 0 : clamp(start, length, 0, length);
      to = stop == null ? length : clamp(stop, length, 0, length);
    } else {
      from = start == null ? length - 1 : clamp(start, length, -1, length - 1);
      to = stop == null ? -1 : clamp(stop, length, -1, length - 1);
    }
    List<Integer> out = new ArrayList<>();
    for (long i = from; by > 0 ? i < to : i > to; i += by) {
      out.add((int) i);
    }
    return out;
  }

  private static long clamp(long index, int length, long lower, long upper) {
    long i = index < 0 ? index + length : index;
    return Math.max(lower, Math.min(upper, i));
  }
}
