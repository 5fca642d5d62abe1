package io.kubetune.trainer.data;

import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.data.jinja.JinjaEnvironment;
import io.kubetune.trainer.model.TokenizerSettings;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How conversations become text: the model's own Jinja chat template when its tokenizer files have
 * one (rendered as transformers' {@code apply_chat_template} renders it, see {@link
 * JinjaEnvironment}), else KubeTune's template (documented in docs/trainer.md). KubeTune's template
 * renders every message as
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

  /** One message of a conversation. */
  public record Message(String role, String content) {}

  /**
   * A rendered conversation and the character ranges [start, end) of {@code text} that the loss
   * covers: each assistant turn as the template writes it, up to and including its end-of-turn.
   */
  public record Rendered(String text, List<int[]> assistantSpans) {}

  private static final JinjaEnvironment JINJA = new JinjaEnvironment();

  private final TokenizerSettings.Template template;
  private final Map<String, String> variables;

  private ChatTemplate(TokenizerSettings.Template template, Map<String, String> variables) {
    this.template = template;
    this.variables = variables;
  }

  /** The model's chat template, or null when the model has none (use KubeTune's). */
  public static ChatTemplate of(TokenizerSettings settings) {
    return settings
        .chatTemplate()
        .map(t -> new ChatTemplate(t, settings.templateVariables()))
        .orElse(null);
  }

  public static String header(String role) {
    return "<|" + role + "|>\n";
  }

  /** What follows a message's content: the end marker and a newline. */
  public static String footer() {
    return END + "\n";
  }

  /**
   * The conversation as the model's template renders it; {@code addGenerationPrompt} appends the
   * start of an assistant turn.
   *
   * @throws BadInputException when the template fails (it raised, or uses something this engine
   *     does not support), naming the file it came from
   */
  public String render(List<Message> messages, boolean addGenerationPrompt) {
    Map<String, Object> vars = new HashMap<>(variables);
    List<Map<String, Object>> list = new ArrayList<>();
    for (Message m : messages) {
      Map<String, Object> message = new LinkedHashMap<>();
      message.put("role", m.role());
      message.put("content", m.content());
      list.add(message);
    }
    vars.put("messages", list);
    vars.put("add_generation_prompt", addGenerationPrompt);
    try {
      return JINJA.render(template.source(), vars);
    } catch (JinjaEnvironment.TemplateException e) {
      throw new BadInputException(
          "the chat template of "
              + template.file()
              + " failed to render a conversation of "
              + messages.size()
              + " messages: "
              + e.getMessage()
              + "; fix the template (or remove it to use the project's chat template) or the data");
    }
  }

  /**
   * The training examples of a conversation with the spans the loss covers. Assistant turn {@code
   * i} is located by rendering: it starts where the rendering of {@code messages[:i]} with the
   * generation prompt ends (what the model sees when it generates that turn), and ends where the
   * rendering of {@code messages[:i+1]} ends. Both renderings must be prefixes of the whole
   * conversation's rendering; then the conversation is one example with a span per assistant turn.
   * Some templates render an earlier assistant turn differently once later turns follow (Qwen3
   * drops the reasoning and the empty {@code <think>} block of earlier turns): then each assistant
   * turn becomes its own example, {@code messages[:i+1]} with the loss on turn {@code i} only,
   * exactly as the model generates it. A template whose generation prompt is not the start of its
   * own assistant turn is refused.
   */
  public List<Rendered> trainingExamples(List<Message> messages, String where) {
    String full = render(messages, false);
    List<int[]> spans = new ArrayList<>();
    List<Rendered> perTurn = new ArrayList<>();
    boolean prefixConsistent = true;
    for (int i = 0; i < messages.size(); i++) {
      if (!messages.get(i).role().equals("assistant")) {
        continue;
      }
      if (i == 0) {
        throw new BadInputException(
            where
                + ": the conversation starts with an assistant message; the model's chat template"
                + " needs a system or user message before it");
      }
      String prompt = render(messages.subList(0, i), true);
      String upTo = render(messages.subList(0, i + 1), false);
      if (!upTo.startsWith(prompt) || upTo.length() == prompt.length()) {
        throw new BadInputException(
            where
                + ": the chat template of "
                + template.file()
                + " does not render assistant message "
                + i
                + " after its own generation prompt, so its tokens cannot be located; this"
                + " template cannot be trained on");
      }
      int[] span = {prompt.length(), upTo.length()};
      perTurn.add(new Rendered(upTo, List.of(span)));
      if (full.startsWith(upTo)) {
        spans.add(span);
      } else {
        prefixConsistent = false;
      }
    }
    return prefixConsistent ? List.of(new Rendered(full, spans)) : perTurn;
  }

  /** The file the template was read from. */
  public String source() {
    return template.file().toString();
  }
}
