package io.kubetune.trainer.data.jinja;

import java.util.ArrayList;
import java.util.List;
import jinjava.de.odysseus.el.tree.Bindings;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.de.odysseus.el.tree.impl.ast.AstRightValue;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;

/** {@code seq[start:stop:step]} with Python's slice semantics, over lists and strings. */
final class AstSlice extends AstRightValue {
  private final AstNode base;
  private final AstNode start;
  private final AstNode stop;
  private final AstNode step;

  AstSlice(AstNode base, AstNode start, AstNode stop, AstNode step) {
    this.base = base;
    this.start = start;
    this.stop = stop;
    this.step = step;
  }

  @Override
  public Object eval(Bindings bindings, ELContext context) {
    Object value = base.eval(bindings, context);
    Long first = index(start, bindings, context);
    Long last = index(stop, bindings, context);
    Long by = index(step, bindings, context);
    if (value instanceof String s) {
      StringBuilder out = new StringBuilder();
      for (int i : PythonSlice.indices(s.length(), first, last, by)) {
        out.append(s.charAt(i));
      }
      return out.toString();
    }
    if (value instanceof List<?> list) {
      List<Object> out = new ArrayList<>();
      for (int i : PythonSlice.indices(list.size(), first, last, by)) {
        out.add(list.get(i));
      }
      return out;
    }
    throw new ELException(
        "cannot slice a " + (value == null ? "undefined value" : value.getClass().getSimpleName()));
  }

  private static Long index(AstNode node, Bindings bindings, ELContext context) {
    if (node == null) {
      return null;
    }
    Object value = node.eval(bindings, context);
    if (value == null) {
      return null;
    }
    if (value instanceof Number n && n.doubleValue() == n.longValue()) {
      return n.longValue();
    }
    throw new ELException("slice indices must be integers, got " + value);
  }

  @Override
  public void appendStructure(StringBuilder builder, Bindings bindings) {
    base.appendStructure(builder, bindings);
    builder.append('[');
    if (start != null) {
      start.appendStructure(builder, bindings);
    }
    builder.append(':');
    if (stop != null) {
      stop.appendStructure(builder, bindings);
    }
    builder.append(':');
    if (step != null) {
      step.appendStructure(builder, bindings);
    }
    builder.append(']');
  }

  @Override
  public int getCardinality() {
    return 4;
  }

  @Override
  public AstNode getChild(int i) {
    return switch (i) {
      case 0 -> base;
      case 1 -> start;
      case 2 -> stop;
      case 3 -> step;
      default -> null;
    };
  }

  @Override
  public String toString() {
    return "[::]";
  }
}
