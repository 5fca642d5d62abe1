package io.kubetune.trainer.data.jinja;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.expression.ExpressionStrategy;
import com.hubspot.jinjava.objects.SafeString;
import com.hubspot.jinjava.tree.output.RenderedOutputNode;
import com.hubspot.jinjava.tree.parse.ExpressionToken;
import java.util.Collection;
import java.util.Map;

/**
 * Writes {@code {{ value }}} as Jinja does, with Python's {@code str()}: {@code True}/{@code
 * False}, floats as Python's repr, lists and dicts as Python's repr (Jinjava writes {@code true},
 * {@code 1.0E-5}, {@code [a, b]}). An undefined value or None writes nothing (Jinja writes "None"
 * for an explicit None, which chat templates do not print).
 */
final class PythonOutput implements ExpressionStrategy {
  private static final long serialVersionUID = 1L;

  @Override
  public RenderedOutputNode interpretOutput(
      ExpressionToken master, JinjavaInterpreter interpreter) {
    Object value = interpreter.resolveELExpression(master.getExpr(), master.getLineNumber());
    return new RenderedOutputNode(str(value));
  }

  static String str(Object value) {
    if (value == null) {
      return "";
    }
    if (value instanceof String s) {
      return s;
    }
    if (value instanceof SafeString s) {
      return s.toString();
    }
    return repr(value);
  }

  static String repr(Object value) {
    if (value == null) {
      return "None";
    }
    if (value instanceof Boolean b) {
      return b ? "True" : "False";
    }
    if (value instanceof Double
        || value instanceof Float
        || value instanceof java.math.BigDecimal) {
      return PythonJson.pythonFloat(((Number) value).doubleValue());
    }
    if (value instanceof Number) {
      return value.toString();
    }
    if (value instanceof String s) {
      return stringRepr(s);
    }
    if (value instanceof Map<?, ?> map) {
      StringBuilder out = new StringBuilder("{");
      boolean first = true;
      for (Map.Entry<?, ?> e : map.entrySet()) {
        out.append(first ? "" : ", ")
            .append(repr(e.getKey()))
            .append(": ")
            .append(repr(e.getValue()));
        first = false;
      }
      return out.append('}').toString();
    }
    if (value instanceof Collection<?> list) {
      StringBuilder out = new StringBuilder("[");
      boolean first = true;
      for (Object o : list) {
        out.append(first ? "" : ", ").append(repr(o));
        first = false;
      }
      return out.append(']').toString();
    }
    return value.toString();
  }

  private static String stringRepr(String s) {
    char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
    StringBuilder out = new StringBuilder().append(quote);
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c == quote) {
            out.append('\\').append(c);
          } else if (c < 0x20 || c == 0x7f) {
            out.append(String.format("\\x%02x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append(quote).toString();
  }
}
