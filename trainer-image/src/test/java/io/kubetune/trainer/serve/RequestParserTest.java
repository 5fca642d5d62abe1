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
    assertThatThrownBy(() -> RequestParser.classify(body("{\"model\":\"m\",\"input\":[1]}")))
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
}
