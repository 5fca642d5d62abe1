package io.kubetune.operator.crd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.TestResources;
import io.kubetune.operator.validation.FineTuneJobValidator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every YAML in examples/ is a FineTuneJob an API server with our CRD would accept. */
class ExamplesValidateAgainstTheCrdTest {

  static Stream<Path> examples() throws IOException {
    try (Stream<Path> files = Files.list(TestResources.repoRoot().resolve("examples"))) {
      return files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList().stream();
    }
  }

  @ParameterizedTest
  @MethodSource("examples")
  void exampleIsValid(Path example) throws IOException {
    JsonNode doc = TestResources.YAML.readTree(example.toFile());
    assertThat(doc.path("kind").asText()).isEqualTo("FineTuneJob");
    assertThat(CrdRules.schemaErrors(doc)).as("schema errors in %s", example).isEmpty();
    assertThat(CrdRules.celErrors(doc, null)).as("CEL errors in %s", example).isEmpty();
    FineTuneJob job = TestResources.YAML.treeToValue(doc, FineTuneJob.class);
    assertThat(FineTuneJobValidator.validate(job))
        .as("operator validation of %s", example)
        .isEmpty();
  }

  @Test
  void theSchemaCatchesStructuralMistakes() throws IOException {
    ObjectNode doc = example("lora-completion.yaml");
    ((ObjectNode) doc.path("spec").path("method")).put("type", "QLoRA");
    ((ObjectNode) doc.path("spec").path("baseModel")).put("uri", "https://example.com/model");
    ((ObjectNode) doc.path("spec").path("method").path("lora")).put("rank", 0);
    ((ObjectNode) doc.path("spec")).remove("checkpoints");
    List<String> errors = CrdRules.schemaErrors(doc);
    assertThat(String.join("\n", errors))
        .contains("type")
        .contains("uri")
        .contains("rank")
        .contains("checkpoints");
  }

  @Test
  void everyCelRuleCompilesAndTheCrossFieldRulesBite() throws IOException {
    assertThat(CrdRules.ruleCount()).isGreaterThanOrEqualTo(8);

    ObjectNode both = example("support-tickets-classification.yaml");
    ((ObjectNode) both.path("spec").path("dataset")).put("validation", "s3://bucket/v.jsonl");
    assertThat(CrdRules.celErrors(both, null)).anySatisfy(e -> assertThat(e).contains("not both"));

    ObjectNode loraOnFull = example("lora-completion.yaml");
    ((ObjectNode) loraOnFull.path("spec").path("method")).put("type", "Full");
    assertThat(CrdRules.celErrors(loraOnFull, null))
        .anySatisfy(e -> assertThat(e).contains("method.lora is only allowed"));

    ObjectNode freezeMissing = example("full-finetune-pvc.yaml");
    ((ObjectNode) freezeMissing.path("spec").path("method")).remove("freeze");
    assertThat(CrdRules.celErrors(freezeMissing, null))
        .anySatisfy(e -> assertThat(e).contains("needs method.freeze.trainableLayers"));

    ObjectNode gateBoth = example("support-tickets-classification.yaml");
    ((ObjectNode) gateBoth.path("spec").path("serving").path("gate")).put("mustBeatBase", true);
    assertThat(CrdRules.celErrors(gateBoth, null))
        .anySatisfy(e -> assertThat(e).contains("exactly one of threshold or mustBeatBase"));
  }

  /**
   * Every string a CEL rule can reach has a maxLength, so the API server's cost estimate for the
   * rules stays bounded (an unbounded string is costed at the maximum request size and can get the
   * whole CRD rejected at install time).
   */
  @Test
  void stringsUnderTheImmutabilityRuleAreBounded() {
    com.fasterxml.jackson.databind.JsonNode spec =
        CrdRules.schema().path("properties").path("spec");
    java.util.List<String> unbounded = new java.util.ArrayList<>();
    spec.path("properties")
        .fields()
        .forEachRemaining(
            e -> {
              if (!java.util.Set.of("resources", "serving", "suspend").contains(e.getKey())) {
                collectUnbounded(e.getValue(), "spec." + e.getKey(), unbounded);
              }
            });
    assertThat(unbounded).isEmpty();
  }

  private static void collectUnbounded(
      com.fasterxml.jackson.databind.JsonNode schema, String path, java.util.List<String> out) {
    if ("string".equals(schema.path("type").asText()) && !schema.has("maxLength")) {
      out.add(path);
    }
    if ("array".equals(schema.path("type").asText()) && !schema.has("maxItems")) {
      out.add(path + " (array)");
    }
    schema
        .path("properties")
        .fields()
        .forEachRemaining(e -> collectUnbounded(e.getValue(), path + "." + e.getKey(), out));
    if (schema.has("items")) {
      collectUnbounded(schema.get("items"), path + "[]", out);
    }
  }

  @Test
  void trainingFieldsAreImmutableExceptWithANewRestartNonce() throws IOException {
    ObjectNode old = example("lora-completion.yaml");

    ObjectNode changedLr = old.deepCopy();
    ((ObjectNode) changedLr.path("spec").path("hyperparameters")).put("learningRate", 0.001);
    assertThat(CrdRules.celErrors(changedLr, old))
        .anySatisfy(e -> assertThat(e).contains("restartNonce"));

    ObjectNode withNonce = changedLr.deepCopy();
    ((ObjectNode) withNonce.path("spec")).put("restartNonce", "2");
    assertThat(CrdRules.celErrors(withNonce, old)).isEmpty();

    ObjectNode servingOnly = old.deepCopy();
    ((ObjectNode) servingOnly.path("spec").path("serving")).put("replicas", 3);
    ((ObjectNode) servingOnly.path("spec")).put("suspend", true);
    assertThat(CrdRules.celErrors(servingOnly, old)).isEmpty();

    // Optional training fields: adding or removing one is a change too.
    ObjectNode minimal = example("support-tickets-classification.yaml");
    ObjectNode addedImage = minimal.deepCopy();
    ((ObjectNode) addedImage.path("spec")).put("trainerImage", "registry.example.com/trainer:2");
    assertThat(CrdRules.celErrors(addedImage, minimal))
        .anySatisfy(e -> assertThat(e).contains("restartNonce"));

    // Resources may change while training (the pod is replaced), without a nonce.
    ObjectNode moreGpus = old.deepCopy();
    ((ObjectNode) moreGpus.path("spec").path("resources")).put("gpus", 4);
    assertThat(CrdRules.celErrors(moreGpus, old)).isEmpty();
  }

  private static ObjectNode example(String name) throws IOException {
    return (ObjectNode)
        TestResources.YAML.readTree(
            TestResources.repoRoot().resolve("examples").resolve(name).toFile());
  }
}
