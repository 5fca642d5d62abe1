package io.kubetune.operator.crd;

import com.fasterxml.jackson.databind.JsonNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import io.kubetune.api.crd.CrdCelRules;
import io.kubetune.operator.TestResources;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

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
  private static final CrdCelRules CEL_RULES = new CrdCelRules(SCHEMA);

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
    return CEL_RULES.errors(document, old);
  }

  /** Number of CEL rules in the CRD, so tests can check they evaluate every one. */
  public static int ruleCount() {
    return CEL_RULES.ruleCount();
  }
}
