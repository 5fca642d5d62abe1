package io.kubetune.trainer.data.jinja;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.TruthyTypeConverter;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.JinjavaInterpreterFactory;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import jinjava.de.odysseus.el.ExpressionFactoryImpl;
import jinjava.de.odysseus.el.tree.TreeBuilder;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ELException;
import jinjava.javax.el.ExpressionFactory;

/**
 * Jinjava set up to render chat templates as transformers does ({@code
 * transformers.utils.chat_template_utils._compile_jinja_template}): trim_blocks and lstrip_blocks
 * (the latter and Jinja's newline handling in {@link JinjaSource}), Python's {@code str()} for
 * printed values ({@link PythonOutput}), the globals {@code raise_exception} and {@code
 * strftime_now}, {@code tojson} as Python's {@code json.dumps} (no HTML escaping), {@code trim} as
 * Python's {@code str.strip}, plus the parser fixes of {@link PythonParser} and Python's string
 * methods ({@link PythonStringMethods}). Jinjava reports problems as errors of the {@link
 * RenderResult} instead of throwing; {@link #render} turns any error into an exception, because a
 * template that did not render cleanly produced wrong text.
 */
public final class JinjaEnvironment {

  /** A template that did not render cleanly; the messages are Jinjava's (or raise_exception's). */
  public static final class TemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TemplateException(String message) {
      super(message);
    }
  }

  private final Jinjava jinjava;

  public JinjaEnvironment() {
    CompositeELResolver resolver = new CompositeELResolver();
    resolver.add(new PythonStringMethods());
    resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
    JinjavaConfig config =
        JinjavaConfig.newBuilder()
            .withTrimBlocks(true)
            // lstrip_blocks is applied by JinjaSource: Jinjava's own strips too much.
            .withLstripBlocks(false)
            .withElResolver(resolver)
            .withInterperterFactory(new PythonOutputInterpreters())
            // Jinja's precedence (filters bind tighter than arithmetic; PythonParser relies on
            // it), Jinja's whitespace control on expressions ({{- x -}}) and strict parsing of it.
            .withLegacyOverrides(
                LegacyOverrides.newBuilder()
                    .withUseNaturalOperatorPrecedence(true)
                    .withUseTrimmingForNotesAndExpressions(true)
                    .withParseWhitespaceControlStrictly(true)
                    .withUsePyishObjectMapper(true)
                    .build())
            .build();
    this.jinjava = new PythonJinjava(config);
    jinjava.registerFunction(
        new ELFunctionDefinition(
            "", "raise_exception", JinjaEnvironment.class, "raiseException", String.class));
    jinjava.registerFunction(
        new ELFunctionDefinition(
            "", "strftime_now", JinjaEnvironment.class, "strftimeNow", String.class));
    jinjava.registerFilter(new ToJson());
    jinjava.registerFilter(new Trim());
  }

  /** Renders {@code template} with {@code variables}; any render error is an exception. */
  public String render(String template, Map<String, Object> variables) {
    RenderResult result = jinjava.renderForResult(JinjaSource.prepare(template), variables);
    List<String> errors = new ArrayList<>();
    for (TemplateError error : result.getErrors()) {
      errors.add(
          (error.getLineno() > 0 ? "line " + error.getLineno() + ": " : "") + error.getMessage());
    }
    if (!errors.isEmpty()) {
      throw new TemplateException(String.join("; ", errors));
    }
    return result.getOutput();
  }

  /** The template's {@code raise_exception(message)}: fails the render with that message. */
  public static String raiseException(String message) {
    // Jinjava reports a throwing function as "Error invoking function" without its message, so
    // the message is recorded as an error of its own first.
    JinjavaInterpreter.getCurrentMaybe()
        .ifPresent(
            interpreter ->
                interpreter.addError(
                    new TemplateError(
                        TemplateError.ErrorType.FATAL,
                        TemplateError.ErrorReason.EXCEPTION,
                        TemplateError.ErrorItem.FUNCTION,
                        "raise_exception: " + message,
                        null,
                        interpreter.getLineNumber(),
                        interpreter.getPosition(),
                        null)));
    throw new ELException("raise_exception: " + message);
  }

  /** The template's {@code strftime_now(format)}: local time in Python's strftime format. */
  public static String strftimeNow(String format) {
    return strftime(ZonedDateTime.now(), format);
  }

  static String strftime(ZonedDateTime t, String format) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < format.length(); i++) {
      char c = format.charAt(i);
      if (c != '%' || i + 1 == format.length()) {
        out.append(c);
        continue;
      }
      char code = format.charAt(++i);
      switch (code) {
        case 'd' -> out.append(String.format("%02d", t.getDayOfMonth()));
        case 'm' -> out.append(String.format("%02d", t.getMonthValue()));
        case 'Y' -> out.append(t.getYear());
        case 'y' -> out.append(String.format("%02d", t.getYear() % 100));
        case 'H' -> out.append(String.format("%02d", t.getHour()));
        case 'M' -> out.append(String.format("%02d", t.getMinute()));
        case 'S' -> out.append(String.format("%02d", t.getSecond()));
        case 'b' -> out.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US));
        case 'B' -> out.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.US));
        case 'a' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.US));
        case 'A' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.US));
        case 'j' -> out.append(String.format("%03d", t.getDayOfYear()));
        case '%' -> out.append('%');
        default -> throw new ELException("strftime_now: format code %" + code + " not supported");
      }
    }
    return out.toString();
  }

  /** Interpreters whose {@code {{ value }}} output is Python's str() ({@link PythonOutput}). */
  private static final class PythonOutputInterpreters extends JinjavaInterpreterFactory {
    @Override
    public JinjavaInterpreter newInstance(
        Jinjava application, Context context, JinjavaConfig renderConfig) {
      context.setExpressionStrategy(new PythonOutput());
      return super.newInstance(application, context, renderConfig);
    }
  }

  /** Jinjava whose expressions are parsed by {@link PythonParser}. */
  private static final class PythonJinjava extends Jinjava {
    private final ExpressionFactory expressions;

    PythonJinjava(JinjavaConfig config) {
      super(config);
      Properties properties = new Properties();
      properties.setProperty(
          TreeBuilder.class.getName(), PythonParser.SyntaxBuilder.class.getName());
      this.expressions = new ExpressionFactoryImpl(properties, new TruthyTypeConverter());
    }

    @Override
    public ExpressionFactory getExpressionFactory() {
      return expressions;
    }
  }

  /** transformers' tojson: {@code json.dumps(x, ensure_ascii=False, indent=None, ...)}. */
  private static final class ToJson implements AdvancedFilter {
    @Override
    public String getName() {
      return "tojson";
    }

    @Override
    public Object filter(
        Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
      Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : at(args, 0);
      boolean ensureAscii = Boolean.TRUE.equals(kwargs.get("ensure_ascii"));
      boolean sortKeys = Boolean.TRUE.equals(kwargs.get("sort_keys"));
      for (String key : kwargs.keySet()) {
        if (!List.of("indent", "ensure_ascii", "sort_keys").contains(key)) {
          throw new ELException("tojson: argument '" + key + "' is not supported");
        }
      }
      if (indent != null && !(indent instanceof Number)) {
        throw new ELException("tojson: indent must be an integer");
      }
      return PythonJson.dumps(
          var, indent == null ? null : ((Number) indent).intValue(), sortKeys, ensureAscii);
    }

    private static Object at(Object[] args, int i) {
      return args != null && args.length > i ? args[i] : null;
    }
  }

  /** Jinja's trim: Python's {@code str.strip(chars)}. */
  private static final class Trim implements AdvancedFilter {
    @Override
    public String getName() {
      return "trim";
    }

    @Override
    public Object filter(
        Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
      String chars = args != null && args.length > 0 && args[0] != null ? args[0].toString() : null;
      return PythonStringMethods.strip(var == null ? "" : var.toString(), chars, true, true);
    }
  }
}
