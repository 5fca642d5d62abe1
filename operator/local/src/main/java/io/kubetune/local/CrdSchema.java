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
import java.util.List;

/**
 * The structural check an API server makes when a FineTuneJob is applied (types, enums, ranges,
 * patterns, required fields), from the committed CRD's OpenAPI schema. The embedded API server does
 * not validate, so local mode does it before applying. CEL rules are checked by the operator's own
 * validation, which reports them in status.
 */
final class CrdSchema {
  private final JsonSchema schema;

  CrdSchema(Path crdFile) throws IOException {
    JsonNode crd = new ObjectMapper(new YAMLFactory()).readTree(crdFile.toFile());
    JsonNode openApi =
        crd.path("spec").path("versions").get(0).path("schema").path("openAPIV3Schema");
    schema = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V4).getSchema(openApi);
  }

  /** One line per problem, e.g. "$.spec.method.type: does not have a value in the enumeration". */
  List<String> errors(JsonNode document) {
    return schema.validate(document).stream().map(ValidationMessage::getMessage).sorted().toList();
  }
}
