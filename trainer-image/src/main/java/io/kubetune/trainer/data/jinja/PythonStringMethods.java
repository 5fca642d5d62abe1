package io.kubetune.trainer.data.jinja;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;
import jinjava.javax.el.ELResolver;

/**
 * Method calls on strings with Python's semantics ({@code s.strip('\n')}, {@code
 * s.split('</think>')[-1]}, {@code s.startswith(...)}), as chat templates written for Jinja call
 * them. Jinjava would otherwise call {@link String}'s Java methods, and some of those exist with
 * other semantics ({@code split} takes a regex and drops trailing empty strings). Every method call
 * on a string ends here: a Python method not listed is an error, so a Java method never runs in its
 * place.
 */
final class PythonStringMethods extends ELResolver {

  @Override
  public Object invoke(
      ELContext context, Object base, Object method, Class<?>[] types, Object[] params) {
    if (!(base instanceof String s) || method == null) {
      return null;
    }
    context.setPropertyResolved(true);
    Object[] args = params == null ? new Object[0] : params;
    String name = method.toString();
    return switch (name) {
      case "strip" -> strip(s, chars(name, args), true, true);
      case "lstrip" -> strip(s, chars(name, args), true, false);
      case "rstrip" -> strip(s, chars(name, args), false, true);
      case "startswith" -> affix(name, s, args, true);
      case "endswith" -> affix(name, s, args, false);
      case "split" -> split(s, args);
      case "replace" -> replace(s, args);
      case "upper" -> noArgs(name, args, s.toUpperCase(java.util.Locale.ROOT));
      case "lower" -> noArgs(name, args, s.toLowerCase(java.util.Locale.ROOT));
      case "title" -> noArgs(name, args, title(s));
      case "capitalize" -> noArgs(name, args, capitalize(s));
      case "find" -> s.indexOf(string(name, args, 0));
      case "count" -> count(s, string(name, args, 0));
      case "join" -> join(s, args);
      default ->
          throw new ELException(
              "strings have no method '"
                  + name
                  + "' here (implemented: strip, lstrip, rstrip, startswith, endswith, split,"
                  + " replace, upper, lower, title, capitalize, find, count, join)");
    };
  }

  private static String chars(String name, Object[] args) {
    if (args.length == 0 || args[0] == null) {
      return null;
    }
    if (args.length > 1) {
      throw new ELException(name + "() takes at most 1 argument");
    }
    return string(name, args, 0);
  }

  private static String string(String name, Object[] args, int i) {
    if (args.length <= i || !(args[i] instanceof String s)) {
      throw new ELException(name + "() argument " + (i + 1) + " must be a string");
    }
    return s;
  }

  private static <T> T noArgs(String name, Object[] args, T result) {
    if (args.length > 0) {
      throw new ELException(name + "() takes no arguments");
    }
    return result;
  }

  /** Python's str.strip: whitespace as {@code str.isspace} defines it, or the given characters. */
  static String strip(String s, String chars, boolean left, boolean right) {
    int start = 0;
    int end = s.length();
    while (left && start < end && stripped(s.charAt(start), chars)) {
      start++;
    }
    while (right && end > start && stripped(s.charAt(end - 1), chars)) {
      end--;
    }
    return s.substring(start, end);
  }

  private static boolean stripped(char c, String chars) {
    return chars == null ? isPythonSpace(c) : chars.indexOf(c) >= 0;
  }

  /** Python's str.isspace for one character (Unicode White_Space plus the ASCII separators). */
  static boolean isPythonSpace(char c) {
    return Character.isWhitespace(c)
        || Character.isSpaceChar(c)
        || c == '\u001c'
        || c == '\u001d'
        || c == '\u001e'
        || c == '\u001f'
        || c == '\u0085';
  }

  private static boolean affix(String name, String s, Object[] args, boolean prefix) {
    if (args.length != 1) {
      throw new ELException(name + "() takes exactly 1 argument here");
    }
    List<String> options = new ArrayList<>();
    if (args[0] instanceof String one) {
      options.add(one);
    } else if (args[0] instanceof Collection<?> many) {
      for (Object o : many) {
        if (!(o instanceof String each)) {
          throw new ELException(name + "() needs strings");
        }
        options.add(each);
      }
    } else {
      throw new ELException(name + "() needs a string or a tuple of strings");
    }
    for (String option : options) {
      if (prefix ? s.startsWith(option) : s.endsWith(option)) {
        return true;
      }
    }
    return false;
  }

  /** Python's str.split(sep=None, maxsplit=-1). */
  private static List<String> split(String s, Object[] args) {
    String sep = args.length > 0 && args[0] != null ? string("split", args, 0) : null;
    long max = -1;
    if (args.length > 1) {
      if (!(args[1] instanceof Number n)) {
        throw new ELException("split() maxsplit must be an integer");
      }
      max = n.longValue();
    }
    if (args.length > 2) {
      throw new ELException("split() takes at most 2 arguments");
    }
    List<String> parts = new ArrayList<>();
    if (sep != null) {
      if (sep.isEmpty()) {
        throw new ELException("split(): empty separator");
      }
      int from = 0;
      int at;
      while ((max < 0 || parts.size() < max) && (at = s.indexOf(sep, from)) >= 0) {
        parts.add(s.substring(from, at));
        from = at + sep.length();
      }
      parts.add(s.substring(from));
      return parts;
    }
    int i = 0;
    int n = s.length();
    while (true) {
      while (i < n && isPythonSpace(s.charAt(i))) {
        i++;
      }
      if (i == n) {
        return parts;
      }
      if (max >= 0 && parts.size() == max) {
        parts.add(strip(s.substring(i), null, false, true));
        return parts;
      }
      int j = i;
      while (j < n && !isPythonSpace(s.charAt(j))) {
        j++;
      }
      parts.add(s.substring(i, j));
      i = j;
    }
  }

  private static String replace(String s, Object[] args) {
    String old = string("replace", args, 0);
    String replacement = string("replace", args, 1);
    long count = -1;
    if (args.length > 2) {
      if (!(args[2] instanceof Number n)) {
        throw new ELException("replace() count must be an integer");
      }
      count = n.longValue();
    }
    if (count < 0) {
      if (old.isEmpty()) {
        throw new ELException("replace() with an empty pattern is not supported here");
      }
      return s.replace(old, replacement);
    }
    StringBuilder out = new StringBuilder();
    int from = 0;
    int at;
    long done = 0;
    while (done < count && !old.isEmpty() && (at = s.indexOf(old, from)) >= 0) {
      out.append(s, from, at).append(replacement);
      from = at + old.length();
      done++;
    }
    return out.append(s.substring(from)).toString();
  }

  private static String title(String s) {
    StringBuilder out = new StringBuilder(s.length());
    boolean previousCased = false;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      out.append(previousCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
      previousCased = Character.isLetter(c);
    }
    return out.toString();
  }

  private static String capitalize(String s) {
    return s.isEmpty()
        ? s
        : Character.toTitleCase(s.charAt(0)) + s.substring(1).toLowerCase(java.util.Locale.ROOT);
  }

  private static long count(String s, String sub) {
    if (sub.isEmpty()) {
      return s.length() + 1;
    }
    long n = 0;
    for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
      n++;
    }
    return n;
  }

  private static String join(String separator, Object[] args) {
    if (args.length != 1 || !(args[0] instanceof Collection<?> items)) {
      throw new ELException("join() needs one list of strings");
    }
    List<String> parts = new ArrayList<>();
    for (Object o : items) {
      if (!(o instanceof String part)) {
        throw new ELException("join() needs strings, got " + o);
      }
      parts.add(part);
    }
    return String.join(separator, parts);
  }

  // Property access is left to Jinjava's resolvers.
  @Override
  public Object getValue(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public Class<?> getType(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public void setValue(ELContext context, Object base, Object property, Object value) {}

  @Override
  public boolean isReadOnly(ELContext context, Object base, Object property) {
    return true;
  }

  @Override
  public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
    return null;
  }

  @Override
  public Class<?> getCommonPropertyType(ELContext context, Object base) {
    return null;
  }
}
