package io.kubetune.trainer.data.jinja;

/**
 * What Jinja's lexer does to a template's source before parsing it, with the settings transformers
 * uses, applied here because Jinjava does it differently:
 *
 * <ul>
 *   <li>newlines ({@code \r\n}, {@code \r}, {@code \n}) become {@code \n} and one trailing newline
 *       is dropped ({@code keep_trailing_newline=False}; Jinjava keeps it);
 *   <li>{@code lstrip_blocks}: spaces and tabs between the start of a line and a block tag {@code
 *       {%} or comment {@code {#} are removed, and only there (Jinjava strips them before every tag,
 *       also after text on the same line, e.g. the space in {@code {{ x }} {% endfor %}}); {@code
 *       {%+} keeps them.
 * </ul>
 *
 * The scan skips the inside of tags (and string literals in them) and {@code raw} blocks, as the
 * lexer does, so text that merely looks like a tag inside a string is left alone.
 */
final class JinjaSource {
  private JinjaSource() {}

  static String prepare(String template) {
    return lstripBlocks(normalizeNewlines(template));
  }

  static String normalizeNewlines(String source) {
    String s = source.replace("\r\n", "\n").replace('\r', '\n');
    return s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
  }

  static String lstripBlocks(String s) {
    StringBuilder out = new StringBuilder(s.length());
    int i = 0;
    int n = s.length();
    while (i < n) {
      char c = s.charAt(i);
      if (c == '{' && i + 1 < n && "{%#".indexOf(s.charAt(i + 1)) >= 0) {
        char kind = s.charAt(i + 1);
        if (kind != '{') {
          boolean keep = i + 2 < n && s.charAt(i + 2) == '+';
          if (!keep && (i + 2 >= n || s.charAt(i + 2) != '-')) {
            // Drop the spaces/tabs just written if they run back to a line start.
            int j = out.length();
            while (j > 0 && (out.charAt(j - 1) == ' ' || out.charAt(j - 1) == '\t')) {
              j--;
            }
            if (j == 0 || out.charAt(j - 1) == '\n') {
              out.setLength(j);
            }
          }
          if (keep) {
            // Jinjava does not know '{%+'; without lstrip here it means the same as '{%'.
            out.append('{').append(kind);
            i += 3;
            int end = tagEnd(s, i, kind);
            out.append(s, i, end);
            i = end;
            continue;
          }
        }
        int end = tagEnd(s, i + 2, kind);
        String tag = s.substring(i, end);
        out.append(tag);
        i = end;
        if (kind == '%' && isTag(tag, "raw")) {
          int close = findEndRaw(s, i);
          out.append(s, i, close);
          i = close;
        }
        continue;
      }
      out.append(c);
      i++;
    }
    return out.toString();
  }

  /** Index just after the tag that starts before {@code from}, skipping string literals. */
  private static int tagEnd(String s, int from, char kind) {
    char close = kind == '{' ? '}' : kind;
    char quote = 0;
    for (int i = from; i < s.length(); i++) {
      char c = s.charAt(i);
      if (kind != '#' && quote != 0) {
        if (c == '\\') {
          i++;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (kind != '#' && (c == '\'' || c == '"')) {
        quote = c;
      } else if (c == close && i + 1 < s.length() && s.charAt(i + 1) == '}') {
        return i + 2;
      }
    }
    return s.length(); // unclosed: Jinjava reports it
  }

  private static boolean isTag(String tag, String name) {
    String inner = tag.substring(2, tag.length() - 2).replace("-", "").replace("+", "").trim();
    return inner.equals(name);
  }

  private static int findEndRaw(String s, int from) {
    int i = from;
    while ((i = s.indexOf("{%", i)) >= 0) {
      int end = tagEnd(s, i + 2, '%');
      if (isTag(s.substring(i, end), "endraw")) {
        return i;
      }
      i = end;
    }
    return s.length();
  }
}
