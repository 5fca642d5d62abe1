package io.kubetune.api.crd;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cel.bundle.Cel;
import dev.cel.bundle.CelFactory;
import dev.cel.common.types.SimpleType;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelRuntime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The CEL rules ({@code x-kubernetes-validations}) of a CRD's OpenAPI schema, evaluated with
 * Google's CEL-Java as an API server would, including transition rules on update. Local mode and
 * the tests use it where no API server checks them (the embedded and the mock API servers do not).
 *
 * <p>Not covered: CEL cost estimation and Kubernetes-only CEL libraries (none are used by the
 * rules). Callers need {@code dev.cel:cel} on their classpath (an optional dependency of this
 * module).
 */
public final class CrdCelRules {
  private static final Cel CEL =
      CelFactory.standardCelBuilder()
          .addVar("self", SimpleType.DYN)
          .addVar("oldSelf", SimpleType.DYN)
          .setStandardMacros(CelStandardMacro.STANDARD_MACROS)
          .build();

  private final JsonNode schema;
  private final Map<String, CelRuntime.Program> programs = new HashMap<>();

  /**
   * @param openApiSchema the CRD version's {@code schema.openAPIV3Schema}
   */
  public CrdCelRules(JsonNode openApiSchema) {
    this.schema = openApiSchema;
  }

  /**
   * Messages of the rules that fail, each prefixed with the path of the object it applies to;
   * transition rules only when {@code old} is given.
   */
  public List<String> errors(JsonNode document, JsonNode old) {
    List<String> errors = new ArrayList<>();
    walk(schema, document, old, "", errors);
    return errors;
  }

  /** Number of CEL rules in the schema, so tests can check they evaluate every one. */
  public int ruleCount() {
    return countRules(schema);
  }

  private static int countRules(JsonNode schema) {
    int count = schema.path("x-kubernetes-validations").size();
    for (Iterator<JsonNode> it = schema.path("properties").elements(); it.hasNext(); ) {
      count += countRules(it.next());
    }
    if (schema.has("items")) {
      count += countRules(schema.get("items"));
    }
    return count;
  }

  private void walk(
      JsonNode schema, JsonNode value, JsonNode old, String path, List<String> errors) {
    if (value == null || value.isMissingNode() || value.isNull()) {
      return;
    }
    for (JsonNode rule : schema.path("x-kubernetes-validations")) {
      String expression = rule.path("rule").asText();
      boolean transition = expression.contains("oldSelf");
      if (transition && (old == null || old.isMissingNode() || old.isNull())) {
        continue;
      }
      Map<String, Object> vars = new LinkedHashMap<>();
      vars.put("self", toCel(value));
      if (transition) {
        vars.put("oldSelf", toCel(old));
      }
      Object result;
      try {
        result = program(expression).eval(vars);
      } catch (Exception e) {
        errors.add(path + ": rule failed to evaluate: " + expression + ": " + e.getMessage());
        continue;
      }
      if (!Boolean.TRUE.equals(result)) {
        errors.add(path + ": " + rule.path("message").asText());
      }
    }
    JsonNode properties = schema.path("properties");
    for (Iterator<Map.Entry<String, JsonNode>> it = properties.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> property = it.next();
      walk(
          property.getValue(),
          value.get(property.getKey()),
          old == null ? null : old.get(property.getKey()),
          path + "." + property.getKey(),
          errors);
    }
    if (schema.has("items") && value.isArray()) {
      for (int i = 0; i < value.size(); i++) {
        walk(schema.get("items"), value.get(i), null, path + "[" + i + "]", errors);
      }
    }
  }

  private synchronized CelRuntime.Program program(String expression) throws Exception {
    CelRuntime.Program program = programs.get(expression);
    if (program == null) {
      program = CEL.createProgram(CEL.compile(expression).getAst());
      programs.put(expression, program);
    }
    return program;
  }

  private static Object toCel(JsonNode node) {
    if (node.isObject()) {
      Map<String, Object> map = new LinkedHashMap<>();
      node.fields().forEachRemaining(e -> map.put(e.getKey(), toCel(e.getValue())));
      return map;
    }
    if (node.isArray()) {
      List<Object> list = new ArrayList<>();
      node.forEach(e -> list.add(toCel(e)));
      return list;
    }
    if (node.isIntegralNumber()) {
      return node.asLong();
    }
    if (node.isNumber()) {
      return node.asDouble();
    }
    if (node.isBoolean()) {
      return node.asBoolean();
    }
    return node.asText();
  }
}
