package io.kubetune.trainer.data;

import java.util.Set;

/**
 * KubeTune's chat template (documented in docs/trainer.md). Every message is rendered as
 *
 * <pre>
 * &lt;|role|&gt;\n{content}&lt;|end|&gt;\n
 * </pre>
 *
 * with role one of system, user, assistant. The loss covers the assistant's content and its {@code
 * <|end|>}; a generation prompt ends with {@code <|assistant|>\n}.
 */
public final class ChatTemplate {
  public static final Set<String> ROLES = Set.of("system", "user", "assistant");
  public static final String END = "<|end|>";

  private ChatTemplate() {}

  public static String header(String role) {
    return "<|" + role + "|>\n";
  }

  /** What follows a message's content: the end marker and a newline. */
  public static String footer() {
    return END + "\n";
  }
}
