package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.Testbed;
import io.kubetune.trainer.model.TextTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A chat request with a {@code developer} message and an assistant message whose content is {@code
 * null} gives, through the server's parser and prompt builder, exactly the token ids transformers'
 * {@code apply_chat_template} gives for the same conversation with {@code system} and {@code ""}
 * (Llama 3.1's and Qwen3's real templates; src/test/python/chat_reference.py).
 */
class ServedRealChatTemplatesTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void developerAndContentlessAssistantRenderAsTransformersRendersSystemAndEmptyContent()
      throws Exception {
    String served =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"You are brief.\"},"
            + "{\"role\":\"user\",\"content\":\"Hi!\"},{\"role\":\"assistant\",\"content\":null},"
            + "{\"role\":\"user\",\"content\":\"And now?\"}]}";
    String reference =
        "{\"chats\":[{\"add_generation_prompt\":true,\"messages\":["
            + "{\"role\":\"system\",\"content\":\"You are brief.\"},"
            + "{\"role\":\"user\",\"content\":\"Hi!\"},{\"role\":\"assistant\",\"content\":\"\"},"
            + "{\"role\":\"user\",\"content\":\"And now?\"}]}]}";
    Path request = dir.resolve("request.json");
    Files.writeString(request, reference);
    Path llamaDir = Testbed.tokenizer("llama3_1");
    Path qwenDir = Testbed.tokenizer("qwen3");
    JsonNode all =
        JSON.readTree(
            Testbed.run(
                    "chat_reference.py",
                    List.of(request.toString(), llamaDir.toString(), qwenDir.toString()),
                    300)
                .orThrow());
    RequestParser.Chat chat = RequestParser.chat(JSON.readTree(served));
    for (Path model : List.of(llamaDir, qwenDir)) {
      JsonNode ref = all.get(model.toString());
      assertThat(ref.at("/render_errors/0").isNull()).as(ref.toString()).isTrue();
      try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
        // chatPrompt reads only the tokenizer's template when the model has one.
        long[] prompt = new Inference(tokenizer).chatPrompt(null, chat.messages());
        assertThat(tokenizer.decode(prompt))
            .as(model.toString())
            .isEqualTo(ref.at("/renders/0").asText());
        long[] expected = new long[ref.at("/render_ids/0").size()];
        for (int i = 0; i < expected.length; i++) {
          expected[i] = ref.at("/render_ids/0").get(i).asLong();
        }
        assertThat(prompt).as(model.toString()).containsExactly(expected);
      }
    }
  }
}
