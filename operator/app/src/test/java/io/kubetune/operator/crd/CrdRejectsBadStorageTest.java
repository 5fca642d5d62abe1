package io.kubetune.operator.crd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.operator.TestResources;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** The CRD pattern refuses what the strict URI parser refuses, before the operator sees it. */
class CrdRejectsBadStorageTest {

  private static ObjectNode example() throws IOException {
    return (ObjectNode)
        TestResources.YAML.readTree(
            TestResources.repoRoot().resolve("examples/lora-completion.yaml").toFile());
  }

  @Test
  void aPercentThatIsNotAnEscapeOrAControlCharacterFailsThePattern() throws IOException {
    ObjectNode doc = example();
    doc.with("spec").with("dataset").put("train", "pvc://claim/data/%/train.jsonl");
    doc.with("spec").with("baseModel").put("uri", "s3://bucket/%zz/model/");
    doc.with("spec").with("checkpoints").put("uri", "s3://bucket/run\u0000/");
    String errors = String.join("\n", CrdRules.schemaErrors(doc));
    assertThat(errors)
        .contains("$.spec.dataset.train")
        .contains("$.spec.baseModel.uri")
        .contains("$.spec.checkpoints.uri");
  }

  @Test
  void validEscapesStillPass() throws IOException {
    ObjectNode doc = example();
    doc.with("spec").with("dataset").put("train", "s3://datasets/a%20b/train.jsonl");
    assertThat(CrdRules.schemaErrors(doc)).isEmpty();
  }

  @Test
  void userInfoInTheEndpointFailsThePattern() throws IOException {
    ObjectNode doc = example();
    doc.with("spec").with("storage").put("endpoint", "http://KEY:SECRET@minio.storage:9000");
    assertThat(String.join("\n", CrdRules.schemaErrors(doc))).contains("$.spec.storage.endpoint");
  }
}
