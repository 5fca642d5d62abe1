package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.storage.StorageSettings;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code trainer serve} with a model folder that carries its own chat template and a list of EOS
 * ids: chat prompts are the template's rendering with the generation prompt, and every EOS id ends
 * the answer.
 */
class ServedChatTemplateTest {
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  static final String TEMPLATE =
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content | trim }}{{ eos_token }}"
          + "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";

  @TempDir Path dir;

  /** kubetune-mini plus tokenizer_config.json (template) and generation_config.json (EOS ids). */
  Path model(List<Integer> eosIds) throws Exception {
    Path model = Files.createTempDirectory(dir, "model");
    for (String file : List.of("config.json", "model.safetensors", "tokenizer.json")) {
      Files.copy(ServeFixtures.BASE.resolve(file), model.resolve(file));
    }
    Files.writeString(
        model.resolve("tokenizer_config.json"),
        "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"chat_template\": "
            + new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(TEMPLATE)
            + "}");
    Files.writeString(
        model.resolve("generation_config.json"),
        "{\"eos_token_id\": "
            + eosIds.stream().map(String::valueOf).collect(Collectors.joining(",", "[", "]"))
            + "}");
    return model;
  }

  ModelRepository load(Path model) throws Exception {
    return ModelRepository.load(
        model.toString(), "base", List.of(), StorageSettings.defaults(), dir.resolve("w"), QUIET);
  }

  static GenerationParams greedy(int maxTokens) {
    return new GenerationParams("base", maxTokens, 0, 1, List.of(), 0, null, false, false);
  }

  @Test
  void chatPromptIsTheModelsTemplateWithItsGenerationPrompt() throws Exception {
    try (ModelRepository repository = load(model(List.of(293)))) {
      Inference inference = new Inference(repository.tokenizer());
      long[] prompt =
          inference.chatPrompt(
              repository.get("base").model(),
              List.of(
                  new RequestParser.Message("system", "Be brief. "),
                  new RequestParser.Message("user", " Hi")));
      assertThat(repository.tokenizer().decode(prompt))
          .isEqualTo("<s>[system] Be brief.</s>[user] Hi</s>[assistant]");
      assertThat(prompt[0]).isEqualTo(292); // <s>, written by the template, not added again
      assertThat(prompt[1]).isNotEqualTo(292);
    }
  }

  @Test
  void everyEosIdOfGenerationConfigStopsTheAnswer() throws Exception {
    // Every id of the vocabulary is an EOS id here, so whatever the model picks first ends it.
    List<Integer> all = IntStream.range(0, 299).boxed().toList();
    try (ModelRepository repository = load(model(all))) {
      Inference inference = new Inference(repository.tokenizer());
      ModelRepository.ServedModel base = repository.get("base");
      long[] prompt =
          inference.chatPrompt(base.model(), List.of(new RequestParser.Message("user", "Hi")));
      Inference.Result result = inference.generate(base, prompt, greedy(20), null, () -> false);
      assertThat(result.finishReason()).isEqualTo("stop");
      assertThat(result.text()).isEmpty();
      assertThat(result.completionTokens()).isEqualTo(1);
    }
    // Control: with only the usual EOS, the same prompt generates text.
    try (ModelRepository repository = load(model(List.of(293)))) {
      Inference inference = new Inference(repository.tokenizer());
      ModelRepository.ServedModel base = repository.get("base");
      long[] prompt =
          inference.chatPrompt(base.model(), List.of(new RequestParser.Message("user", "Hi")));
      Inference.Result result = inference.generate(base, prompt, greedy(20), null, () -> false);
      assertThat(result.completionTokens()).isGreaterThan(1);
    }
  }

  @Test
  void aConversationTheTemplateRefusesIsA400() throws Exception {
    Path model = model(List.of(293));
    Files.writeString(
        model.resolve("chat_template.jinja"),
        "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the"
            + " user') }}{% endif %}");
    try (ModelRepository repository = load(model)) {
      Inference inference = new Inference(repository.tokenizer());
      assertThatThrownBy(
              () ->
                  inference.chatPrompt(
                      repository.get("base").model(),
                      List.of(new RequestParser.Message("system", "x"))))
          .isInstanceOf(ApiException.class)
          .hasMessageContaining("first message must be from the user");
    }
  }

  @Test
  void aDeveloperMessageAndAnAssistantMessageWithoutContentRenderThroughTheTemplate()
      throws Exception {
    try (ModelRepository repository = load(model(List.of(293)))) {
      Inference inference = new Inference(repository.tokenizer());
      RequestParser.Chat chat =
          RequestParser.chat(
              new com.fasterxml.jackson.databind.ObjectMapper()
                  .readTree(
                      "{\"model\":\"base\",\"messages\":["
                          + "{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                          + "{\"role\":\"user\",\"content\":\"Hi\"},"
                          + "{\"role\":\"assistant\",\"content\":null},"
                          + "{\"role\":\"user\",\"content\":\"Again\"}]}"));
      long[] prompt = inference.chatPrompt(repository.get("base").model(), chat.messages());
      assertThat(repository.tokenizer().decode(prompt))
          .isEqualTo(
              "<s>[system] Be brief.</s>[user] Hi</s>[assistant] </s>[user] Again</s>[assistant]");
    }
  }
}
