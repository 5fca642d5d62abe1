package io.kubetune.trainer.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class RequestParserTest {
  static final ObjectMapper JSON = new ObjectMapper();

  static JsonNode body(String json) throws Exception {
    return JSON.readTree(json);
  }

  @Test
  void completionDefaultsFollowOpenAi() throws Exception {
    var c = RequestParser.completion(body("{\"model\":\"m\",\"prompt\":[\"hi\"],\"seed\":4}"));
    assertThat(c.prompt()).isEqualTo("hi");
    assertThat(c.params().maxTokens()).isEqualTo(16);
    assertThat(c.params().temperature()).isEqualTo(1.0);
    assertThat(c.params().topP()).isEqualTo(1.0);
    assertThat(c.params().seed()).isEqualTo(4);
    assertThat(c.params().logprobs()).isNull();
    assertThat(c.params().stream()).isFalse();
  }

  @Test
  void chatAcceptsTextPartsAndMaxCompletionTokens() throws Exception {
    var c =
        RequestParser.chat(
            body(
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                    + "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                    + "\"max_completion_tokens\":7,\"logprobs\":true,\"top_logprobs\":3,"
                    + "\"stop\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"));
    assertThat(c.messages()).containsExactly(new RequestParser.Message("user", "ab"));
    assertThat(c.params().maxTokens()).as("chat: null means up to the context").isEqualTo(7);
    assertThat(c.params().logprobs()).isEqualTo(3);
    assertThat(c.params().stop()).containsExactly("x");
    assertThat(c.params().includeUsageInStream()).isTrue();
    assertThat(
            RequestParser.chat(
                    body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"))
                .params()
                .maxTokens())
        .isNull();
  }

  @Test
  void eachBadFieldIsNamedWithWhatItAccepts() {
    expect("{\"prompt\":\"x\"}", "model", "model: required");
    expect("{\"model\":\"m\",\"prompt\":\"x\",\"top_p\":0}", "top_p", "greater than 0");
    expect("{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens", "of at least 1");
    expect(
        "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1.5}",
        "max_tokens",
        "must be an integer");
    expect(
        "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
        "stop",
        "at most 4");
    expect("{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":9}", "logprobs", "from 0 to 5");
    expect("{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}", "echo", "remove it");
    expect("{\"model\":\"m\",\"prompt\":\"x\",\"seed\":\"s\"}", "seed", "integer");
    expect("{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", "prompt", "one prompt per request");
    expect("{\"model\":\"m\",\"prompt\":\"x\",\"stream\":\"yes\"}", "stream", "true or false");
    assertThatThrownBy(
            () ->
                RequestParser.chat(
                    body(
                        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}")))
        .hasMessageContaining("set logprobs to true");
    assertThatThrownBy(() -> RequestParser.classify(body("{\"model\":\"m\",\"input\":[1]}"), 8))
        .hasMessageContaining("input[0]: must be a string");
  }

  static void expect(String json, String param, String message) {
    assertThatThrownBy(() -> RequestParser.completion(body(json)))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status()).isEqualTo(400);
              assertThat(e.param()).isEqualTo(param);
            })
        .hasMessageContaining(message);
  }

  static final String CHAT =
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
  static final String COMPLETION = "{\"model\":\"m\",\"prompt\":\"x\"";

  @Test
  void classifyRefusesMoreInputsThanTheServersLimitNamingInputAndTheLimit() throws Exception {
    assertThat(
            RequestParser.classify(body("{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\"]}"), 3)
                .inputs())
        .hasSize(3);
    assertThatThrownBy(
            () ->
                RequestParser.classify(
                    body("{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\",\"d\"]}"), 3))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status()).isEqualTo(400);
              assertThat(e.param()).isEqualTo("input");
            })
        .hasMessageContaining("4 inputs")
        .hasMessageContaining("at most 3 per request (--max-classify-inputs)");
  }

  @Test
  void fieldsTheServerDoesNotImplementAreRefusedWhenSetToAnythingButTheirDefault() {
    expectChat(",\"response_format\":{\"type\":\"json_object\"}}", "response_format");
    expectChat(",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", "tools");
    expectChat(",\"tool_choice\":\"required\"}", "tool_choice");
    expectChat(
        ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}", "tool_choice");
    expectChat(",\"functions\":[{\"name\":\"f\"}]}", "functions");
    expectChat(",\"function_call\":{\"name\":\"f\"}}", "function_call");
    expectChat(",\"logit_bias\":{\"50256\":-100}}", "logit_bias");
    expectChat(",\"presence_penalty\":0.5}", "presence_penalty");
    expectChat(",\"frequency_penalty\":-1}", "frequency_penalty");
    expectChat(",\"store\":true}", "store");
    expectChat(",\"n\":2}", "n");
    expectChat(",\"user\":7}", "user");
    expect(COMPLETION + ",\"logit_bias\":{\"1\":5}}", "logit_bias", "empty object");
    expect(COMPLETION + ",\"presence_penalty\":1}", "presence_penalty", "remove it");
    expect(COMPLETION + ",\"frequency_penalty\":0.1}", "frequency_penalty", "remove it");
    expect(COMPLETION + ",\"best_of\":2}", "best_of", "only 1");
    // The two endpoints' logprobs differ: an integer for completions, a boolean for chat.
    expect(COMPLETION + ",\"logprobs\":true}", "logprobs", "must be an integer from 0 to 5");
    expectChat(",\"logprobs\":2}", "logprobs");
    // Streaming options belong to streams, and only include_usage is implemented.
    expect(
        COMPLETION + ",\"stream_options\":{\"include_usage\":true}}", "stream_options", "stream");
    expectChat(
        ",\"stream\":true,\"stream_options\":{\"include_obfuscation\":true}}",
        "stream_options.include_obfuscation");
  }

  @Test
  void unknownFieldsAreRefusedByName() {
    expect(COMPLETION + ",\"top_k\":5}", "top_k", "not a field this server implements");
    expect(COMPLETION + ",\"max_token\":5}", "max_token", "/v1/completions");
    // Fields of the chat endpoint are unknown to the completions endpoint and the other way round.
    expect(COMPLETION + ",\"response_format\":{\"type\":\"text\"}}", "response_format", "remove");
    expectChat(",\"suffix\":\"s\"}", "suffix");
    expectChat(",\"reasoning_effort\":\"low\"}", "reasoning_effort");
    expectChat(",\"modalities\":[\"text\",\"audio\"]}", "modalities");
    assertThatThrownBy(
            () ->
                RequestParser.classify(
                    body("{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"float\"}"), 8))
        .isInstanceOfSatisfying(
            ApiException.class, e -> assertThat(e.param()).isEqualTo("encoding_format"));
  }

  @Test
  void defaultValuesOfUnimplementedFieldsAndHarmlessFieldsAreAccepted() throws Exception {
    var chat =
        RequestParser.chat(
            body(
                CHAT
                    + ",\"response_format\":{\"type\":\"text\"},\"tools\":[],\"tool_choice\":"
                    + "\"none\",\"parallel_tool_calls\":false,\"functions\":[],\"function_call\":"
                    + "\"auto\",\"logit_bias\":{},\"presence_penalty\":0,\"frequency_penalty\":0.0,"
                    + "\"n\":1,\"user\":\"u-1\",\"store\":false,\"top_k\":null,"
                    + "\"stream\":true,\"stream_options\":{\"include_usage\":false}}"));
    assertThat(chat.params().stream()).isTrue();
    assertThat(chat.params().includeUsageInStream()).isFalse();
    var completion =
        RequestParser.completion(
            body(COMPLETION + ",\"echo\":false,\"suffix\":null,\"best_of\":1,\"user\":\"u\"}"));
    assertThat(completion.prompt()).isEqualTo("x");
  }

  @Test
  void developerIsReadAsSystemAndAnAssistantWithoutContentIsAnEmptyTurn() throws Exception {
    var chat =
        RequestParser.chat(
            body(
                "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                    + "{\"role\":\"user\",\"content\":\"Hi\"},"
                    + "{\"role\":\"assistant\",\"content\":null},"
                    + "{\"role\":\"assistant\"},"
                    + "{\"role\":\"user\",\"content\":\"Again\",\"name\":null}]}"));
    assertThat(chat.messages())
        .containsExactly(
            new RequestParser.Message("system", "Be brief."),
            new RequestParser.Message("user", "Hi"),
            new RequestParser.Message("assistant", ""),
            new RequestParser.Message("assistant", ""),
            new RequestParser.Message("user", "Again"));
    expectChatMessages("[{\"role\":\"user\",\"content\":null}]", "messages[0].content", "required");
    expectChatMessages(
        "[{\"role\":\"user\",\"content\":\"x\",\"name\":\"ann\"}]",
        "messages[0].name",
        "role and content only");
    expectChatMessages(
        "[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\"}]}]",
        "messages[0].tool_calls",
        "remove it");
    expectChatMessages(
        "[{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c\"}]",
        "messages[0].role",
        "tool calls");
  }

  @Test
  void aPromptOfTokenIdsIsReadAsTokenIdsNotAsABatch() throws Exception {
    var flat = RequestParser.completion(body("{\"model\":\"m\",\"prompt\":[1,20,300]}"));
    assertThat(flat.prompt()).isNull();
    assertThat(flat.promptIds()).containsExactly(1, 20, 300);
    var nested = RequestParser.completion(body("{\"model\":\"m\",\"prompt\":[[5,6]]}"));
    assertThat(nested.promptIds()).containsExactly(5, 6);
    assertThat(RequestParser.completion(body("{\"model\":\"m\",\"prompt\":[7]}")).promptIds())
        .containsExactly(7);
    expect("{\"model\":\"m\",\"prompt\":[[1],[2]]}", "prompt", "batches of 2 prompts");
    expect("{\"model\":\"m\",\"prompt\":[1,-2]}", "prompt", "prompt[1]: -2 is not a token id");
    expect("{\"model\":\"m\",\"prompt\":[[1,3000000000]]}", "prompt", "prompt[0][1]");
    expect(
        "{\"model\":\"m\",\"prompt\":[\"a\",1]}",
        "prompt",
        "prompt: must be a string or a non-empty list of token ids");
    expect("{\"model\":\"m\",\"prompt\":[]}", "prompt", "non-empty list of token ids");
    expect("{\"model\":\"m\",\"prompt\":[1.5]}", "prompt", "token ids (integers)");
  }

  static void expectChat(String rest, String param) {
    assertThatThrownBy(() -> RequestParser.chat(body(CHAT + rest)))
        .as(rest)
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status()).isEqualTo(400);
              assertThat(e.param()).isEqualTo(param);
            })
        .hasMessageStartingWith(param + ":");
  }

  static void expectChatMessages(String messages, String param, String message) {
    assertThatThrownBy(
            () -> RequestParser.chat(body("{\"model\":\"m\",\"messages\":" + messages + "}")))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.param()).isEqualTo(param))
        .hasMessageContaining(message);
  }
}
