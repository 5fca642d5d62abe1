package io.kubetune.trainer.data.jinja;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.Testbed;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The constructs chat templates use, rendered here and in transformers' Jinja environment
 * (src/test/python/jinja_reference.py): each output must be identical, and what fails there must
 * fail here.
 */
class JinjaEnvironmentTest {
  static final ObjectMapper JSON = new ObjectMapper();

  static final Map<String, Object> VARIABLES =
      Map.of(
          "s",
          "\n  <think>\nplan\n</think>\n\nanswer\n",
          "t",
          "a</think>",
          "u",
          "{{ 7 * 7 }} {% if true %}x{% endif %}",
          "messages",
          List.of(
              Map.of("role", "system", "content", "sys"),
              Map.of("role", "user", "content", "<tool_response>x</tool_response>"),
              Map.of("role", "assistant", "content", "ok")),
          "tool",
          Map.of("name", "get", "parameters", Map.of("x", List.of(1, 2.5, true), "é", "<b>")));

  static final List<String> TEMPLATES =
      List.of(
          // Python string methods
          "[{{ s.strip() }}][{{ s.strip('\\n') }}][{{ s.lstrip('\\n') }}][{{ s.rstrip('\\n') }}]",
          "{{ s.split('</think>')[-1].lstrip('\\n') }}|{{ s.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
          "{{ t.split('</think>') | length }}{{ ' a  b '.split() | length }}{{ 'a,b,c'.split(',', 1)[1] }}",
          "{{ s.startswith('\\n') }}{{ s.endswith('x') }}{{ messages[1].content.startswith('<tool_response>') }}",
          "{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ 'hello world'.title() }}{{ 'a-b'.replace('-', '+') }}",
          // slices, namespace with keyword arguments, loops over reversed lists
          "{% for m in messages[::-1] %}{{ loop.index0 }}{{ m.role }} {% endfor %}",
          "{{ messages[1:] | length }}{{ messages[:-1][-1].role }}{{ 'abcdef'[::2] }}{{ 'abcdef'[4:1:-1] }}",
          "{%- set ns = namespace(multi=true, last=messages|length - 1) %}{{ ns.multi }}{{ ns.last }}",
          "{%- set ns = namespace(i=0) %}{% for m in messages %}{% set ns.i = ns.i + 1 %}{% endfor %}{{ ns.i }}",
          // whitespace control as transformers sets it (trim_blocks, lstrip_blocks) and {{- -}}
          "a\n  {%- if true %}\n    b\n  {% endif %}\n  {{- ' c ' -}}\n  d\n",
          "{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n",
          // filters and tests
          "{{ tool | tojson }}",
          "{{ tool | tojson(indent=2) }}",
          "{{ messages | length }}{{ messages[0].content | trim }}{{ '  x ' | trim }}{{ messages | map(attribute='role') | join(',') }}",
          "{{ messages[0].reasoning is defined }}{{ messages[0].content is string }}{{ none is none }}",
          "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '!' }}{% endif %}",
          "{{ 7 // 2 }} {{ 2 ** 3 }} {{ 'a' ~ 1 }} {{ [1, 2] + [3] }}",
          // data that looks like template syntax stays data
          "{{ u }}|{% set c = u + '!' %}{{ c }}|{{ u | trim }}",
          // failures
          "{{ raise_exception('bad conversation') }}",
          "{{ s.no_such_method() }}");

  @TempDir Path dir;

  @Test
  void rendersLikeTransformersJinjaEnvironment() throws Exception {
    Path request = dir.resolve("request.json");
    JSON.writeValue(request.toFile(), Map.of("variables", VARIABLES, "templates", TEMPLATES));
    JsonNode reference =
        JSON.readTree(
            Testbed.run("jinja_reference.py", List.of(request.toString()), 120).orThrow());
    JinjaEnvironment jinja = new JinjaEnvironment();
    SoftAssertions softly = new SoftAssertions();
    for (int i = 0; i < TEMPLATES.size(); i++) {
      String template = TEMPLATES.get(i);
      JsonNode expected = reference.get(i);
      if (expected.has("error")) {
        softly
            .assertThatThrownBy(() -> jinja.render(template, VARIABLES))
            .as("%s fails in transformers with %s", template, expected.get("error"))
            .isInstanceOf(JinjaEnvironment.TemplateException.class);
      } else {
        String output;
        try {
          output = jinja.render(template, VARIABLES);
        } catch (JinjaEnvironment.TemplateException e) {
          output = "FAILED: " + e.getMessage();
        }
        softly.assertThat(output).as(template).isEqualTo(expected.get("output").asText());
      }
    }
    softly.assertAll();
  }

  @Test
  void raiseExceptionReportsItsMessage() {
    assertThatThrownBy(
            () ->
                new JinjaEnvironment().render("{{ raise_exception('roles alternate') }}", Map.of()))
        .hasMessageContaining("raise_exception: roles alternate");
  }
}
