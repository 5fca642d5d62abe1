package io.kubetune.trainer.data.jinja;

import static jinjava.de.odysseus.el.tree.impl.Builder.Feature.METHOD_INVOCATIONS;
import static jinjava.de.odysseus.el.tree.impl.Builder.Feature.NULL_PROPERTIES;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.COLON;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.COMMA;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.DOT;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.IDENTIFIER;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.LBRACK;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.LPAREN;
import static jinjava.de.odysseus.el.tree.impl.Scanner.Symbol.RBRACK;

import com.hubspot.jinjava.el.ExtendedSyntaxBuilder;
import com.hubspot.jinjava.el.ext.AstNamedParameter;
import com.hubspot.jinjava.el.ext.ExtendedParser;
import com.hubspot.jinjava.el.ext.NamedParameterOperator;
import java.util.ArrayList;
import java.util.List;
import jinjava.de.odysseus.el.tree.impl.Builder;
import jinjava.de.odysseus.el.tree.impl.Parser;
import jinjava.de.odysseus.el.tree.impl.Scanner.ScanException;
import jinjava.de.odysseus.el.tree.impl.Scanner.Symbol;
import jinjava.de.odysseus.el.tree.impl.Scanner.Token;
import jinjava.de.odysseus.el.tree.impl.ast.AstDot;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.de.odysseus.el.tree.impl.ast.AstParameters;

/**
 * Jinjava's expression parser with two fixes that bring it to Jinja's grammar, as chat templates
 * use it (Jinjava 2.8.2 is built on a shaded JUEL, hence the {@code jinjava.} package prefix):
 *
 * <ul>
 *   <li>A keyword argument's value is a whole expression: Jinja parses {@code
 *       namespace(i=messages|length - 1)} as {@code i=(messages|length - 1)}; Jinjava binds {@code
 *       =} like {@code +}, yielding {@code (i=messages|length) - 1}, which fails to evaluate.
 *   <li>Slices with a step, {@code seq[start:stop:step]} (e.g. Qwen3's {@code messages[::-1]}),
 *       which Jinjava's grammar lacks; they evaluate as Python slices ({@link AstSlice}).
 * </ul>
 *
 * Everything else is Jinjava's parser unchanged.
 */
public final class PythonParser extends ExtendedParser {

  PythonParser(Builder context, String input) {
    super(context, input);
  }

  /**
   * Builds this parser; registered by class name as the expression factory's tree builder, which
   * instantiates it reflectively (hence public).
   */
  public static final class SyntaxBuilder extends ExtendedSyntaxBuilder {
    private static final long serialVersionUID = 1L;

    public SyntaxBuilder(Builder.Feature... features) {
      super(features);
    }

    @Override
    protected Parser createParser(String expression) {
      return new PythonParser(this, expression);
    }
  }

  @Override
  protected AstParameters params(Symbol left, Symbol right) throws ScanException, ParseException {
    consumeToken(left);
    List<AstNode> list = new ArrayList<>();
    AstNode v = argument(false);
    if (v != null) {
      list.add(v);
      while (getToken().getSymbol() == COMMA) {
        consumeToken();
        list.add(argument(true));
      }
    }
    consumeToken(right);
    return createAstParameters(list);
  }

  /** A positional argument, or {@code name=expression} with the whole expression as value. */
  private AstNode argument(boolean required) throws ScanException, ParseException {
    if (getToken().getSymbol() == IDENTIFIER
        && lookahead(0).getSymbol() == Symbol.EXTENSION
        && NamedParameterOperator.TOKEN.getImage().equals(lookahead(0).getImage())) {
      String name = consumeToken().getImage();
      consumeToken();
      return new AstNamedParameter(identifier(name), expr(true));
    }
    return expr(required);
  }

  /** Jinjava's {@code value()} (natural operator precedence), plus three-part slices. */
  @Override
  protected AstNode value() throws ScanException, ParseException {
    boolean lvalue = true;
    AstNode v = nonliteral();
    if (v == null) {
      v = literal();
      if (v == null) {
        return null;
      }
      lvalue = false;
    }
    while (true) {
      switch (getToken().getSymbol()) {
        case DOT:
          {
            consumeToken();
            String name = consumeToken(IDENTIFIER).getImage();
            AstDot dot = createAstDot(v, name, lvalue);
            if (getToken().getSymbol() == LPAREN && context.isEnabled(METHOD_INVOCATIONS)) {
              v = createAstMethod(dot, params());
            } else {
              v = dot;
            }
            break;
          }
        case LBRACK:
          {
            consumeToken();
            AstNode start = expr(false);
            boolean strict = !context.isEnabled(NULL_PROPERTIES);
            Token next = consumeToken();
            if (next.getSymbol() == COLON) {
              AstNode stop = expr(false);
              if (getToken().getSymbol() == COLON) {
                consumeToken();
                AstNode step = expr(false);
                consumeToken(RBRACK);
                v = new AstSlice(v, start, stop, step);
              } else {
                consumeToken(RBRACK);
                v = createAstRangeBracket(v, start, stop, lvalue, strict);
              }
            } else if (next.getSymbol() == RBRACK) {
              var bracket = createAstBracket(v, start, lvalue, strict);
              if (getToken().getSymbol() == LPAREN && context.isEnabled(METHOD_INVOCATIONS)) {
                v = createAstMethod(bracket, params());
              } else {
                v = bracket;
              }
            } else {
              fail(RBRACK);
            }
            break;
          }
        default:
          return v;
      }
    }
  }
}
