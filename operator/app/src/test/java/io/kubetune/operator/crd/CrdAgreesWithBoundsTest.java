package io.kubetune.operator.crd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.Bounds;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.validation.FineTuneJobValidator;
import java.io.IOException;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The committed CRD, the operator's validator and the table in {@link Bounds} agree on every
 * numeric bound and default: the schema carries the table's minimum/maximum (and exclusivity), its
 * description names the table's default, and for values on and just across each edge the CRD and
 * the validator both accept or both reject.
 */
class CrdAgreesWithBoundsTest {

  static Stream<Bounds.Bound> bounds() {
    return Bounds.ALL.stream();
  }

  @ParameterizedTest
  @MethodSource("bounds")
  void schemaCarriesTheTablesRangeAndDefault(Bounds.Bound bound) {
    JsonNode node = schemaOf(bound.field());
    assertThat(node.isMissingNode()).as("schema node of spec.%s", bound.field()).isFalse();
    assertThat(node.path("minimum").asDouble()).as("minimum").isEqualTo(bound.min());
    assertThat(node.path("exclusiveMinimum").asBoolean(false))
        .as("exclusiveMinimum")
        .isEqualTo(!bound.minInclusive());
    if (Double.isInfinite(bound.max())) {
      assertThat(node.has("maximum")).as("no maximum").isFalse();
    } else {
      assertThat(node.path("maximum").asDouble()).as("maximum").isEqualTo(bound.max());
      assertThat(node.path("exclusiveMaximum").asBoolean(false))
          .as("exclusiveMaximum")
          .isEqualTo(!bound.maxInclusive());
    }
    assertThat(node.path("type").asText()).isEqualTo(bound.integral() ? "integer" : "number");
    if (bound.defaultValue() != null) {
      assertThat(node.path("description").asText())
          .as("description of spec.%s", bound.field())
          .containsPattern(
              "Default " + Pattern.quote(bound.defaultValue().toString()) + "(?![0-9]|\\.[0-9])");
    }
  }

  @ParameterizedTest
  @MethodSource("bounds")
  void crdAndValidatorAcceptAndRejectTheSameValues(Bounds.Bound bound) throws IOException {
    for (Probe probe : probes(bound)) {
      ObjectNode doc =
          (ObjectNode)
              TestResources.YAML.readTree(
                  TestResources.repoRoot().resolve("examples/lora-completion.yaml").toFile());
      ObjectNode spec = (ObjectNode) doc.path("spec");
      // The example sets the fields these are exclusive with; that is another rule's business.
      ((ObjectNode) spec.path("hyperparameters")).remove("epochs");
      ((ObjectNode) spec.path("dataset")).remove("validation");
      spec.with("dataset").put("validationSplit", 0.1);
      set(spec, bound.field(), probe.value());
      String path = "$.spec." + bound.field();
      boolean crdRejects =
          CrdRules.schemaErrors(doc).stream().anyMatch(e -> e.startsWith(path + ":"));
      FineTuneJob job = TestResources.YAML.treeToValue(doc, FineTuneJob.class);
      boolean validatorRejects =
          FineTuneJobValidator.validate(job).stream()
              .anyMatch(p -> p.field().equals("spec." + bound.field()));
      assertThat(crdRejects)
          .as("CRD rejects spec.%s = %s", bound.field(), probe.value())
          .isEqualTo(!probe.valid());
      assertThat(validatorRejects)
          .as("validator rejects spec.%s = %s", bound.field(), probe.value())
          .isEqualTo(!probe.valid());
    }
  }

  private record Probe(BigDecimal value, boolean valid) {}

  private static List<Probe> probes(Bounds.Bound b) {
    BigDecimal step = b.integral() ? BigDecimal.ONE : new BigDecimal("0.001");
    BigDecimal min = BigDecimal.valueOf(b.min());
    List<Probe> probes = new ArrayList<>();
    probes.add(new Probe(min, b.minInclusive()));
    probes.add(new Probe(min.subtract(step), false));
    probes.add(new Probe(min.add(step), true));
    if (!Double.isInfinite(b.max())) {
      BigDecimal max = BigDecimal.valueOf(b.max());
      probes.add(new Probe(max, b.maxInclusive()));
      probes.add(new Probe(max.add(step), false));
      probes.add(new Probe(max.subtract(step), true));
    }
    if (b.defaultValue() != null) {
      probes.add(new Probe(new BigDecimal(b.defaultValue().toString()), true));
    }
    return probes;
  }

  private static void set(ObjectNode spec, String field, BigDecimal value) {
    String[] parts = field.split("\\.");
    ObjectNode node = spec;
    for (int i = 0; i < parts.length - 1; i++) {
      node = node.with(parts[i]);
    }
    if (value.stripTrailingZeros().scale() <= 0) {
      node.put(parts[parts.length - 1], value.longValueExact());
    } else {
      node.put(parts[parts.length - 1], value.doubleValue());
    }
  }

  private static JsonNode schemaOf(String field) {
    JsonNode node = CrdRules.schema().path("properties").path("spec");
    for (String part : field.split("\\.")) {
      node = node.path("properties").path(part);
    }
    return node;
  }
}
