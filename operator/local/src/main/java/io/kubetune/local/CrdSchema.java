package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The checks an API server makes when a FineTuneJob is applied, from the committed CRD: its OpenAPI
 * schema (types, enums, ranges, patterns, required fields) and its CEL rules. The embedded API
 * server does neither, so local mode does them before applying. Transition rules (immutability
 * without a new restartNonce) need the stored object; the operator enforces that rule itself.
 */
final class CrdSchema {
  /** Top-level fields every Kubernetes object has, whether the CRD schema lists them or not. */
  private static final List<String> OBJECT_FIELDS = List.of("apiVersion", "kind", "metadata");

  private final JsonSchema schema;
  private final JsonNode openApi;
  private final io.kubetune.api.crd.CrdCelRules celRules;

  CrdSchema(Path crdFile) throws IOException {
    JsonNode crd = new ObjectMapper(new YAMLFactory()).readTree(crdFile.toFile());
    openApi = crd.path("spec").path("versions").get(0).path("schema").path("openAPIV3Schema");
    schema = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V4).getSchema(openApi);
    celRules = new io.kubetune.api.crd.CrdCelRules(openApi);
  }

  /** One line per CEL rule the new object breaks, e.g. ".spec: set lora only with method LoRA". */
  List<String> celErrors(JsonNode document) {
    return celRules.errors(document, null);
  }

  /** One line per problem, e.g. "$.spec.method.type: does not have a value in the enumeration". */
  List<String> errors(JsonNode document) {
    return schema.validate(document).stream().map(ValidationMessage::getMessage).sorted().toList();
  }

  /**
   * Fields the schema does not know, e.g. "$.spec.hyperparameter: unknown field (did you mean
   * hyperparameters?)". An API server drops them silently (pruning) and kubectl only warns; a
   * misspelled field would then run with its default, so local mode refuses it. {@code status} and
   * {@code metadata} are not checked.
   */
  List<String> unknownFields(JsonNode document) {
    List<String> unknown = new ArrayList<>();
    JsonNode spec = document.path("spec");
    if (spec.isObject()) {
      walk(openApi.path("properties").path("spec"), spec, "$.spec", unknown);
    }
    document
        .fieldNames()
        .forEachRemaining(
            name -> {
              if (!openApi.path("properties").has(name) && !OBJECT_FIELDS.contains(name)) {
                unknown.add("$." + name + ": unknown field");
              }
            });
    return unknown;
  }

  private static void walk(JsonNode schema, JsonNode value, String path, List<String> unknown) {
    if (value.isObject()) {
      JsonNode properties = schema.path("properties");
      JsonNode additional = schema.path("additionalProperties");
      Iterator<Map.Entry<String, JsonNode>> fields = value.fields();
      while (fields.hasNext()) {
        Map.Entry<String, JsonNode> field = fields.next();
        String child = path + "." + field.getKey();
        if (properties.has(field.getKey())) {
          walk(properties.get(field.getKey()), field.getValue(), child, unknown);
        } else if (additional.isObject()) {
          walk(additional, field.getValue(), child, unknown);
        } else if (properties.isObject()
            && !schema.path("x-kubernetes-preserve-unknown-fields").asBoolean(false)) {
          unknown.add(child + ": unknown field" + suggestion(field.getKey(), properties));
        }
      }
    } else if (value.isArray() && schema.has("items")) {
      for (int i = 0; i < value.size(); i++) {
        walk(schema.get("items"), value.get(i), path + "[" + i + "]", unknown);
      }
    }
  }

  private static String suggestion(String name, JsonNode properties) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    for (Iterator<String> it = properties.fieldNames(); it.hasNext(); ) {
      String candidate = it.next();
      int d = distance(name.toLowerCase(Locale.ROOT), candidate.toLowerCase(Locale.ROOT));
      if (d < bestDistance) {
        best = candidate;
        bestDistance = d;
      }
    }
    return best != null && bestDistance <= Math.max(2, name.length() / 4)
        ? " (did you mean " + best + "?)"
        : "; known fields: " + String.join(", ", iterable(properties.fieldNames()));
  }

  private static List<String> iterable(Iterator<String> names) {
    List<String> list = new ArrayList<>();
    names.forEachRemaining(list::add);
    return list;
  }

  /** Levenshtein distance. */
  private static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
