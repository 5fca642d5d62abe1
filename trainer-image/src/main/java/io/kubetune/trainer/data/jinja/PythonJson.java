package io.kubetune.trainer.data.jinja;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.ELException;

/**
 * Python's {@code json.dumps(x, ensure_ascii=False, indent=None, sort_keys=False)}, which
 * transformers installs as the chat templates' {@code tojson} filter: separators {@code ", "} and
 * {@code ": "} without indent, {@code ","} and newlines with it, non-ASCII kept as is, and floats
 * written as Python's repr writes them.
 */
final class PythonJson {
  private PythonJson() {}

  static String dumps(Object value, Integer indent, boolean sortKeys, boolean ensureAscii) {
    StringBuilder out = new StringBuilder();
    write(out, value, indent, sortKeys, ensureAscii, 0);
    return out.toString();
  }

  private static void write(
      StringBuilder out, Object value, Integer indent, boolean sort, boolean ascii, int depth) {
    if (value == null) {
      out.append("null");
    } else if (value instanceof Boolean b) {
      out.append(b ? "true" : "false");
    } else if (value instanceof String s) {
      string(out, s, ascii);
    } else if (value instanceof Integer
        || value instanceof Long
        || value instanceof Short
        || value instanceof Byte
        || value instanceof java.math.BigInteger) {
      out.append(value);
    } else if (value instanceof Number n) {
      out.append(pythonFloat(n.doubleValue()));
    } else if (value instanceof Map<?, ?> map) {
      List<Map.Entry<?, ?>> entries = new ArrayList<>(map.entrySet());
      if (sort) {
        entries.sort((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey())));
      }
      if (entries.isEmpty()) {
        out.append("{}");
        return;
      }
      out.append('{');
      for (int i = 0; i < entries.size(); i++) {
        out.append(i == 0 ? "" : indent == null ? ", " : ",");
        newline(out, indent, depth + 1);
        Object key = entries.get(i).getKey();
        if (!(key instanceof String k)) {
          throw new ELException("tojson: only string keys are supported, got " + key);
        }
        string(out, k, ascii);
        out.append(": ");
        write(out, entries.get(i).getValue(), indent, sort, ascii, depth + 1);
      }
      newline(out, indent, depth);
      out.append('}');
    } else if (value instanceof Iterable<?> items) {
      List<Object> list = new ArrayList<>();
      items.forEach(list::add);
      if (list.isEmpty()) {
        out.append("[]");
        return;
      }
      out.append('[');
      for (int i = 0; i < list.size(); i++) {
        out.append(i == 0 ? "" : indent == null ? ", " : ",");
        newline(out, indent, depth + 1);
        write(out, list.get(i), indent, sort, ascii, depth + 1);
      }
      newline(out, indent, depth);
      out.append(']');
    } else {
      throw new ELException("tojson: cannot serialize a " + value.getClass().getSimpleName());
    }
  }

  private static void newline(StringBuilder out, Integer indent, int depth) {
    if (indent != null) {
      out.append('\n').append(" ".repeat(indent * depth));
    }
  }

  private static void string(StringBuilder out, String s, boolean ascii) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        default -> {
          if (c < 0x20 || (ascii && c > 0x7e)) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }

  /** Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
  static String pythonFloat(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    if (d == 0) {
      return (1 / d < 0) ? "-0.0" : "0.0";
    }
    BigDecimal exact = new BigDecimal(Double.toString(d)).stripTrailingZeros();
    String digits = exact.unscaledValue().abs().toString();
    int exponent = digits.length() - 1 - exact.scale(); // d = 0.digits * 10^(exponent+1)
    String sign = d < 0 ? "-" : "";
    if (exponent < -4 || exponent >= 16) {
      String mantissa =
          digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
      return sign
          + mantissa
          + "e"
          + (exponent < 0 ? "-" : "+")
          + String.format("%02d", Math.abs(exponent));
    }
    String plain = exact.abs().toPlainString();
    return sign + (plain.contains(".") ? plain : plain + ".0");
  }
}
