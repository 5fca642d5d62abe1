package io.kubetune.operator.crd;

import com.fasterxml.jackson.databind.JsonNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import dev.cel.bundle.Cel;
import dev.cel.bundle.CelFactory;
import dev.cel.common.types.SimpleType;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelRuntime;
import io.kubetune.operator.TestResources;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What an API server would check when a FineTuneJob is applied: the committed CRD's OpenAPI schema
 * (via a JSON Schema validator) and its CEL rules (via Google's CEL-Java), including transition
 * rules on update. The Fabric8 mock server does neither, so tests use this.
 *
 * <p>Not covered: CEL cost estimation and Kubernetes-only CEL libraries (none are used by the
 * rules).
 */
public final class CrdRules {
  private static final JsonNode SCHEMA = loadSchema();
  private static final Cel CEL =
      CelFactory.standardCelBuilder()
          .addVar("self", SimpleType.DYN)
          .addVar("oldSelf", SimpleType.DYN)
          .setStandardMacros(CelStandardMacro.STANDARD_MACROS)
          .build();
  private static final Map<String, CelRuntime.Program> PROGRAMS = new HashMap<>();

  private CrdRules() {}

  static JsonNode loadSchema() {
    try {
      JsonNode crd =
          TestResources.YAML.readTree(
              TestResources.repoRoot().resolve("crds/finetunejobs.kubetune.io-v1.yml").toFile());
      return crd.path("spec").path("versions").get(0).path("schema").path("openAPIV3Schema");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static JsonNode schema() {
    return SCHEMA;
  }

  /** Structural schema errors (types, enums, ranges, patterns, required fields). */
  public static List<String> schemaErrors(JsonNode document) {
    JsonSchema schema = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V4).getSchema(SCHEMA);
    List<String> errors = new ArrayList<>();
    for (ValidationMessage m : schema.validate(document)) {
      errors.add(m.getMessage());
    }
    return errors;
  }

  /** Messages of the CEL rules that fail; transition rules only when {@code old} is given. */
  public static List<String> celErrors(JsonNode document, JsonNode old) {
    List<String> errors = new ArrayList<>();
    walk(SCHEMA, document, old, "", errors);
    return errors;
  }

  /** Number of CEL rules in the CRD, so tests can check they evaluate every one. */
  public static int ruleCount() {
    return countRules(SCHEMA);
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

  private static void walk(
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

  private static synchronized CelRuntime.Program program(String expression) throws Exception {
    CelRuntime.Program program = PROGRAMS.get(expression);
    if (program == null) {
      program = CEL.createProgram(CEL.compile(expression).getAst());
      PROGRAMS.put(expression, program);
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
