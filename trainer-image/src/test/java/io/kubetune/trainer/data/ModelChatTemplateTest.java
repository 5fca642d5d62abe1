package io.kubetune.trainer.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.Testbed;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.model.TokenizerSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real Llama 3.1 and Qwen3 tokenizers and chat templates against transformers 5 (the Python
 * test bed, one run of src/test/python/chat_reference.py for the whole class): token ids of plain
 * strings, rendered chats ({@code apply_chat_template(tokenize=False)}) and their token ids ({@code
 * tokenize=True}), then the assistant mask, refusals and the fallback.
 */
class ModelChatTemplateTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  static final List<String> STRINGS =
      List.of(
          "Hello world",
          "<|im_start|>user\nHi<|im_end|>\n",
          "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
          "  leading, inner   runs\n\n\n\tand trailing  ",
          "héllo wörld, 日本語のテキスト, emoji 🚀👩‍💻, Ünïcödé ß",
          "<think>\nreasoning\n</think>\n\nanswer",
          "code:\n    def f(x):\n        return x ** 2\n",
          "");

  @TempDir static Path dir;
  static JsonNode reference;
  static List<ObjectNode> chats = new ArrayList<>();
  static TextTokenizer llama;
  static TextTokenizer qwen;

  static ObjectNode message(String role, String content) {
    return JSON.createObjectNode().put("role", role).put("content", content);
  }

  static void chat(boolean addGenerationPrompt, ObjectNode... messages) {
    ObjectNode chat = JSON.createObjectNode();
    ArrayNode list = chat.putArray("messages");
    for (ObjectNode m : messages) {
      list.add(m);
    }
    chat.put("add_generation_prompt", addGenerationPrompt);
    chats.add(chat);
  }

  @BeforeAll
  static void reference() throws Exception {
    ObjectNode user = message("user", "Hi! How are you?");
    ObjectNode system = message("system", "You are brief.");
    ObjectNode answer = message("assistant", "Fine, thanks.");
    ObjectNode thinking = message("assistant", "<think>\nThe user greets.\n</think>\n\nHello 🚀!");
    ObjectNode user2 = message("user", "  And now?  \n");
    ObjectNode answer2 = message("assistant", "Now, 日本語.\n");
    chat(false, user, answer);
    chat(true, user);
    chat(true, system, user);
    chat(false, system, user, answer);
    chat(false, system, user, thinking, user2, answer2);
    chat(true, system, user, thinking, user2);
    chat(false, user, answer, user2, answer2);
    ObjectNode request = JSON.createObjectNode();
    STRINGS.forEach(request.putArray("strings")::add);
    chats.forEach(request.putArray("chats")::add);
    Path file = dir.resolve("request.json");
    JSON.writeValue(file.toFile(), request);
    Path llamaDir = Testbed.tokenizer("llama3_1");
    Path qwenDir = Testbed.tokenizer("qwen3");
    String out =
        Testbed.run(
                "chat_reference.py",
                List.of(file.toString(), llamaDir.toString(), qwenDir.toString()),
                300)
            .orThrow();
    JsonNode all = JSON.readTree(out);
    reference = JSON.createObjectNode().set("llama3_1", all.get(llamaDir.toString()));
    ((ObjectNode) reference).set("qwen3", all.get(qwenDir.toString()));
    llama = TextTokenizer.load(llamaDir);
    qwen = TextTokenizer.load(qwenDir);
  }

  @AfterAll
  static void close() {
    llama.close();
    qwen.close();
  }

  static long[] ids(JsonNode array) {
    long[] ids = new long[array.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = array.get(i).asLong();
    }
    return ids;
  }

  static List<ChatTemplate.Message> messages(ObjectNode chat) {
    List<ChatTemplate.Message> list = new ArrayList<>();
    for (JsonNode m : chat.get("messages")) {
      list.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
    }
    return list;
  }

  @Test
  void tokenIdsEqualTransformersForSpecialTokensUnicodeAndWhitespace() {
    for (var entry : Map.of("llama3_1", llama, "qwen3", qwen).entrySet()) {
      JsonNode ref = reference.get(entry.getKey());
      TokenizerSettings settings = entry.getValue().settings();
      for (int i = 0; i < STRINGS.size(); i++) {
        String s = STRINGS.get(i);
        long[] ours = entry.getValue().encode(s);
        assertThat(ours)
            .as("%s encode(%s)", entry.getKey(), s)
            .containsExactly(ids(ref.get("encodings").get(i)));
        // What the tokenizer adds around plain text (BOS for Llama 3.1, nothing for Qwen3).
        long[] withSpecial =
            settings.addBos() ? concat(new long[] {settings.bos().orElseThrow().id()}, ours) : ours;
        assertThat(withSpecial)
            .as("%s encode(%s) with special tokens", entry.getKey(), s)
            .containsExactly(ids(ref.get("encodings_with_special").get(i)));
      }
    }
    assertThat(llama.settings().addBos()).isTrue();
    assertThat(qwen.settings().addBos()).isFalse();
  }

  @Test
  void renderedChatsAndTheirTokenIdsEqualApplyChatTemplate() {
    for (var entry : Map.of("llama3_1", llama, "qwen3", qwen).entrySet()) {
      JsonNode ref = reference.get(entry.getKey());
      ChatTemplate template = ChatTemplate.of(entry.getValue().settings());
      assertThat(template).isNotNull();
      for (int i = 0; i < chats.size(); i++) {
        assertThat(ref.get("render_errors").get(i).isNull())
            .as("transformers renders chat %d", i)
            .isTrue();
        String rendered =
            template.render(
                messages(chats.get(i)), chats.get(i).get("add_generation_prompt").asBoolean());
        assertThat(rendered)
            .as("%s chat %d", entry.getKey(), i)
            .isEqualTo(ref.get("renders").get(i).asText());
        assertThat(entry.getValue().encode(rendered))
            .as("%s chat %d token ids", entry.getKey(), i)
            .containsExactly(ids(ref.get("render_ids").get(i)));
      }
    }
  }

  static Path jsonl(String name, String... lines) throws Exception {
    Path file = dir.resolve(name);
    Files.writeString(file, String.join("\n", lines) + "\n");
    return file;
  }

  static List<Example> chatExamples(TextTokenizer tokenizer, Path file) {
    JsonlDataset dataset =
        new JsonlDataset(
            DatasetFormat.CHAT,
            JsonlDataset.Fields.DEFAULT,
            tokenizer,
            JsonlDataset.SpecialTokens.of(tokenizer.settings()),
            ChatTemplate.of(tokenizer.settings()),
            512);
    return dataset.tokenize(file, JsonlDataset.readLines(file), null);
  }

  /** The target tokens of an example, decoded run by run. */
  static List<String> targetRuns(TextTokenizer tokenizer, Example e) {
    List<String> runs = new ArrayList<>();
    int t = 0;
    while (t < e.tokens().length) {
      if (!e.trainOn()[t]) {
        t++;
        continue;
      }
      int start = t;
      while (t < e.tokens().length && e.trainOn()[t]) {
        t++;
      }
      runs.add(tokenizer.decode(Arrays.copyOfRange(e.tokens(), start, t)));
    }
    return runs;
  }

  static final String CONVERSATION =
      "{\"messages\": [{\"role\": \"system\", \"content\": \"You are brief.\"},"
          + " {\"role\": \"user\", \"content\": \"Hi\"},"
          + " {\"role\": \"assistant\", \"content\": \"Hello 🚀!\"},"
          + " {\"role\": \"user\", \"content\": \"Bye\"},"
          + " {\"role\": \"assistant\", \"content\": \"Goodbye.\"}]}";

  @Test
  void llamaLossCoversEachAssistantTurnAndItsEndOfTurnInOneExample() throws Exception {
    List<Example> examples = chatExamples(llama, jsonl("llama.jsonl", CONVERSATION));
    assertThat(examples).hasSize(1);
    Example e = examples.get(0);
    assertThat(targetRuns(llama, e)).containsExactly("Hello 🚀!<|eot_id|>", "Goodbye.<|eot_id|>");
    // The template writes BOS itself; it is not added a second time.
    assertThat(e.tokens()[0]).isEqualTo(128000);
    assertThat(e.tokens()[1]).isNotEqualTo(128000);
  }

  @Test
  void qwen3ConversationBecomesOneExamplePerAssistantTurnBecauseEarlierTurnsRenderDifferently()
      throws Exception {
    List<Example> examples = chatExamples(qwen, jsonl("qwen.jsonl", CONVERSATION));
    // Qwen3's template writes an empty <think> block into the last assistant turn only, so turn 1
    // alone and turn 1 followed by more turns render differently: one example per turn.
    assertThat(examples).hasSize(2);
    assertThat(targetRuns(qwen, examples.get(0)))
        .containsExactly("<think>\n\n</think>\n\nHello 🚀!<|im_end|>\n");
    assertThat(targetRuns(qwen, examples.get(1)))
        .containsExactly("<think>\n\n</think>\n\nGoodbye.<|im_end|>\n");
    assertThat(qwen.decode(examples.get(1).tokens()))
        .startsWith(
            "<|im_start|>system\nYou are brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        .contains("<|im_start|>assistant\nHello 🚀!<|im_end|>\n<|im_start|>user\nBye");
  }

  /** A model folder with Qwen3's tokenizer.json and the given tokenizer_config.json. */
  static Path modelWith(String name, ObjectNode tokenizerConfig) throws Exception {
    Path model = Files.createDirectories(dir.resolve(name));
    Files.copy(
        Testbed.tokenizer("qwen3").resolve("tokenizer.json"), model.resolve("tokenizer.json"));
    JSON.writeValue(model.resolve("tokenizer_config.json").toFile(), tokenizerConfig);
    return model;
  }

  static ObjectNode qwenConfigWithTemplate(String template) throws Exception {
    ObjectNode config =
        (ObjectNode)
            JSON.readTree(Testbed.tokenizer("qwen3").resolve("tokenizer_config.json").toFile());
    if (template == null) {
      config.remove("chat_template");
    } else {
      config.put("chat_template", template);
    }
    return config;
  }

  @Test
  void aTemplateThatFailsToRenderIsRefusedNamingTheFile() throws Exception {
    String[] broken = {
      "{{ raise_exception('Conversation roles must alternate user/assistant') }}",
      "{% for m in messages %}{{ m.content.trim() }}{% endfor %}",
      "{% for m in messages %}{{ m.content | no_such_filter }}{% endfor %}",
    };
    for (int i = 0; i < broken.length; i++) {
      Path model = modelWith("broken" + i, qwenConfigWithTemplate(broken[i]));
      try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
        Path data = jsonl("broken" + i + ".jsonl", CONVERSATION);
        assertThatThrownBy(() -> chatExamples(tokenizer, data))
            .as(broken[i])
            .isInstanceOf(BadInputException.class)
            .hasMessageContaining(model.resolve("tokenizer_config.json").toString())
            .hasMessageContaining(i == 0 ? "roles must alternate" : "");
      }
    }
  }

  @Test
  void aModelWithoutChatTemplateUsesTheProjectTemplate() throws Exception {
    Path model = modelWith("no-template", qwenConfigWithTemplate(null));
    try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
      assertThat(ChatTemplate.of(tokenizer.settings())).isNull();
      List<Example> examples = chatExamples(tokenizer, jsonl("fallback.jsonl", CONVERSATION));
      assertThat(examples).hasSize(1);
      assertThat(tokenizer.decode(examples.get(0).tokens()))
          .isEqualTo(
              "<|system|>\nYou are brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello"
                  + " 🚀!<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\nGoodbye.<|end|>\n");
      assertThat(targetRuns(tokenizer, examples.get(0)))
          .containsExactly("Hello 🚀!<|end|>\n", "Goodbye.<|end|>\n");
    }
  }

  @Test
  void chatTemplateJinjaFileTakesPrecedenceAndAllEosIdsStopGeneration() throws Exception {
    Path model = modelWith("jinja-file", qwenConfigWithTemplate("{{ 'from tokenizer_config' }}"));
    Files.writeString(
        model.resolve("chat_template.jinja"),
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}");
    Files.writeString(
        model.resolve("generation_config.json"), "{\"eos_token_id\": [151643, 151645]}");
    Files.writeString(
        model.resolve("config.json"), "{\"eos_token_id\": 151643, \"bos_token_id\": 151643}");
    try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
      ChatTemplate template = ChatTemplate.of(tokenizer.settings());
      assertThat(template.source()).endsWith("chat_template.jinja");
      assertThat(template.render(List.of(new ChatTemplate.Message("user", "Hi")), false))
          .isEqualTo("[user]Hi<|im_end|>");
      assertThat(tokenizer.settings().stopIds()).containsExactlyInAnyOrder(151643L, 151645L);
      assertThat(tokenizer.settings().eos().text()).isEqualTo("<|im_end|>");
      assertThat(tokenizer.settings().pad().orElseThrow().id()).isEqualTo(151643L);
      assertThat(tokenizer.settings().bos()).isEmpty();
    }
  }

  static long[] concat(long[] a, long[] b) {
    return IntStream.range(0, a.length + b.length)
        .mapToLong(i -> i < a.length ? a[i] : b[i - a.length])
        .toArray();
  }
}
