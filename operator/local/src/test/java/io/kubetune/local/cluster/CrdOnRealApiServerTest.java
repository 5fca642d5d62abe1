package io.kubetune.local.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The committed CRD on a real kube-apiserver: it installs with server-side apply (so the server's
 * CEL cost estimate accepts every rule), every example passes a server-side dry run, and the server
 * rejects invalid specs with the CRD's own messages.
 */
class CrdOnRealApiServerTest {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static String namespace;

  @BeforeAll
  static void namespace() {
    namespace = RealCluster.restrictedNamespace("crd");
  }

  @Test
  void theCrdInstallsWithServerSideApplyAndIsEstablished() throws IOException {
    KubernetesClient admin = RealCluster.admin();
    // Applying the same CRD again is a no-op for the server (server-side apply is idempotent).
    RealClusterSetup.installCrd(admin, RealCluster.ROOT);
    CustomResourceDefinition installed =
        admin
            .apiextensions()
            .v1()
            .customResourceDefinitions()
            .withName("finetunejobs.kubetune.io")
            .get();
    assertThat(installed.getStatus().getAcceptedNames().getShortNames()).contains("ftj");
    assertThat(installed.getMetadata().getManagedFields())
        .anySatisfy(f -> assertThat(f.getManager()).isEqualTo(RealCluster.FIELD_MANAGER));
  }

  static Stream<Path> examples() throws IOException {
    try (Stream<Path> files = Files.list(RealCluster.ROOT.resolve("examples"))) {
      return files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList().stream();
    }
  }

  @ParameterizedTest
  @MethodSource("examples")
  void everyExamplePassesAServerSideDryRun(Path example) throws IOException {
    GenericKubernetesResource created =
        RealCluster.admin().resource(inNamespace(read(example))).dryRun().create();
    assertThat(created.getMetadata().getUid()).as("dry-run create of %s", example).isNotBlank();
  }

  static Stream<Arguments> invalidSpecs() {
    return Stream.of(
        invalid(
            "validation and validationSplit",
            "support-tickets-classification.yaml",
            doc -> spec(doc, "dataset").put("validation", "s3://bucket/v.jsonl"),
            "set either dataset.validation (a file) or dataset.validationSplit (a fraction), not both"),
        invalid(
            "validationSplit 0 (a whole number the schema's fractional minimum lets through)",
            "support-tickets-classification.yaml",
            doc -> spec(doc, "dataset").put("validationSplit", 0),
            "dataset.validationSplit must be at least 0.01"),
        invalid(
            "labels without classification",
            "lora-completion.yaml",
            doc -> spec(doc, "dataset").putArray("labels").add("a").add("b"),
            "dataset.labels is only used with dataset.format: classification"),
        invalid(
            "epochs and maxSteps",
            "lora-completion.yaml",
            doc -> spec(doc, "hyperparameters").put("maxSteps", 100),
            "set hyperparameters.epochs or hyperparameters.maxSteps, not both"),
        invalid(
            "lora on Full",
            "lora-completion.yaml",
            doc -> spec(doc, "method").put("type", "Full"),
            "method.lora is only allowed with method.type: LoRA"),
        invalid(
            "FreezeLayers without freeze",
            "full-finetune-pvc.yaml",
            doc -> spec(doc, "method").remove("freeze"),
            "method.type: FreezeLayers needs method.freeze.trainableLayers"),
        invalid(
            "gate with threshold and mustBeatBase",
            "support-tickets-classification.yaml",
            doc ->
                ((ObjectNode) doc.path("spec").path("serving").path("gate"))
                    .put("mustBeatBase", true),
            "serving.gate needs exactly one of threshold or mustBeatBase: true"),
        invalid(
            "lora rank below its minimum",
            "lora-completion.yaml",
            doc -> ((ObjectNode) doc.path("spec").path("method").path("lora")).put("rank", 0),
            "spec.method.lora.rank: Invalid value: 0: spec.method.lora.rank in body should be greater than or equal to 1"),
        invalid(
            "an unknown method",
            "lora-completion.yaml",
            doc -> spec(doc, "method").put("type", "QLoRA"),
            "spec.method.type: Unsupported value: \"QLoRA\""),
        invalid(
            "no checkpoints",
            "lora-completion.yaml",
            doc -> ((ObjectNode) doc.path("spec")).remove("checkpoints"),
            "spec.checkpoints: Required value"),
        invalid(
            "a base model that is not a storage URI",
            "lora-completion.yaml",
            doc -> spec(doc, "baseModel").put("uri", "https://example.com/model"),
            "spec.baseModel.uri in body should match"));
  }

  private static Arguments invalid(
      String name, String example, Consumer<ObjectNode> change, String message) {
    return Arguments.of(name, example, change, message);
  }

  private static ObjectNode spec(ObjectNode doc, String field) {
    return (ObjectNode) doc.path("spec").path(field);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalidSpecs")
  void theServerRejectsAnInvalidSpecWithTheCrdsMessage(
      String name, String example, Consumer<ObjectNode> change, String message) throws IOException {
    ObjectNode doc = read(RealCluster.ROOT.resolve("examples").resolve(example));
    change.accept(doc);
    GenericKubernetesResource resource = inNamespace(doc);
    assertThatThrownBy(() -> RealCluster.admin().resource(resource).dryRun().create())
        .isInstanceOfSatisfying(
            KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(422))
        .hasMessageContaining(message);
  }

  @Test
  void trainingFieldsAreImmutableOnTheServerUnlessRestartNonceChanges() throws IOException {
    KubernetesClient admin = RealCluster.admin();
    ObjectNode doc = read(RealCluster.ROOT.resolve("examples/lora-completion.yaml"));
    ((ObjectNode) doc.path("metadata")).put("name", "immutable");
    GenericKubernetesResource created = admin.resource(inNamespace(doc)).create();

    GenericKubernetesResource changedRate = copy(created);
    hyperparameters(changedRate).put("learningRate", 0.001);
    assertThatThrownBy(() -> admin.resource(changedRate).update())
        .isInstanceOfSatisfying(
            KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(422))
        .hasMessageContaining("are immutable: change spec.restartNonce");

    // Serving, suspend and resources may change without a nonce.
    GenericKubernetesResource servingOnly = copy(created);
    ((java.util.Map<String, Object>) servingOnly.getAdditionalProperties().get("spec"))
        .put("suspend", true);
    GenericKubernetesResource suspended = admin.resource(servingOnly).update();

    GenericKubernetesResource withNonce = copy(suspended);
    hyperparameters(withNonce).put("learningRate", 0.001);
    ((java.util.Map<String, Object>) withNonce.getAdditionalProperties().get("spec"))
        .put("restartNonce", "2");
    assertThat(admin.resource(withNonce).update().getMetadata().getGeneration()).isEqualTo(3L);
    admin.resource(withNonce).delete();
  }

  @SuppressWarnings("unchecked")
  private static java.util.Map<String, Object> hyperparameters(GenericKubernetesResource r) {
    return (java.util.Map<String, Object>)
        ((java.util.Map<String, Object>) r.getAdditionalProperties().get("spec"))
            .get("hyperparameters");
  }

  private static GenericKubernetesResource copy(GenericKubernetesResource r) {
    return YAML.convertValue(
        YAML.convertValue(r, ObjectNode.class), GenericKubernetesResource.class);
  }

  private static ObjectNode read(Path file) throws IOException {
    return (ObjectNode) YAML.readTree(file.toFile());
  }

  private static GenericKubernetesResource inNamespace(ObjectNode doc) {
    ((ObjectNode) doc.path("metadata")).put("namespace", namespace);
    return YAML.convertValue(doc, GenericKubernetesResource.class);
  }
}
