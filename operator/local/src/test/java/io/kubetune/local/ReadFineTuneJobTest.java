package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Local mode refuses what an API server with the CRD would refuse, with the reason. */
class ReadFineTuneJobTest {
  static final Path ROOT = KubeTuneLocal.repoRoot();

  @TempDir Path dir;

  @Test
  void theQuickstartIsAccepted() throws Exception {
    assertThat(read(ROOT.resolve("examples/quickstart.yaml"))).isEmpty();
  }

  @Test
  void everyExampleIsAccepted() throws Exception {
    try (var files = Files.list(ROOT.resolve("examples"))) {
      for (Path example : files.filter(p -> p.toString().endsWith(".yaml")).toList()) {
        assertThat(read(example)).as("%s", example).isEmpty();
      }
    }
  }

  @Test
  void anotherKindIsRefused() throws Exception {
    Path file = dir.resolve("cm.yaml");
    Files.writeString(file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
    assertThat(read(file)).contains("is not a FineTuneJob");
  }

  @Test
  void schemaErrorsNameTheField() throws Exception {
    Path file = dir.resolve("bad.yaml");
    Files.writeString(
        file,
        "apiVersion: kubetune.io/v1alpha1\nkind: FineTuneJob\nmetadata:\n  name: x\n"
            + "spec:\n  method:\n    type: QLoRA\n");
    assertThat(read(file))
        .contains("would be rejected by the API server")
        .contains("$.spec.method.type")
        .contains("'checkpoints' not found");
  }

  @Test
  void celRulesOfTheCrdAreChecked() throws Exception {
    // Structurally valid, but LoRA settings on a Full job break a CEL rule of the CRD, which the
    // embedded API server would not evaluate.
    String quickstart = Files.readString(ROOT.resolve("examples/quickstart.yaml"));
    assertThat(quickstart).contains("type: LoRA");
    Path file = dir.resolve("cel.yaml");
    Files.writeString(file, quickstart.replace("type: LoRA", "type: Full"));
    assertThat(read(file))
        .contains("would be rejected by the API server")
        .contains(".spec.method: method.lora is only allowed with method.type: LoRA");
  }

  @Test
  void brokenYamlIsReported() throws Exception {
    Path file = dir.resolve("broken.yaml");
    Files.writeString(file, "kind: [FineTuneJob\n");
    assertThat(read(file)).contains("is not valid YAML");
  }

  static final String HEAD = "apiVersion: kubetune.io/v1alpha1\nkind: FineTuneJob\nmetadata:\n";

  @Test
  void aMisspelledFieldIsRefusedWithASuggestion() throws Exception {
    String quickstart = Files.readString(ROOT.resolve("examples/quickstart.yaml"));
    Path file = dir.resolve("typo.yaml");
    Files.writeString(file, quickstart.replace("method:", "methd:"));
    assertThat(read(file)).contains("$.spec.methd: unknown field (did you mean method?)");
  }

  @Test
  void aFileWithoutSpecIsRefused() throws Exception {
    Path file = dir.resolve("nospec.yaml");
    Files.writeString(file, HEAD + "  name: x\n");
    assertThat(read(file)).contains("has no spec");
  }

  @Test
  void anInvalidNameIsRefused() throws Exception {
    String quickstart = Files.readString(ROOT.resolve("examples/quickstart.yaml"));
    String name =
        quickstart.lines().filter(l -> l.startsWith("  name: ")).findFirst().orElseThrow();
    Path file = dir.resolve("name.yaml");
    Files.writeString(file, quickstart.replace(name, "  name: My_Job"));
    assertThat(read(file)).contains("metadata.name 'My_Job' is not a valid name");
  }

  @Test
  void severalDocumentsAreRefused() throws Exception {
    String quickstart = Files.readString(ROOT.resolve("examples/quickstart.yaml"));
    Path file = dir.resolve("two.yaml");
    Files.writeString(file, quickstart + "\n---\n" + quickstart);
    assertThat(read(file)).contains("holds 2 YAML documents");
  }

  /** The printed error, or "" when the file is accepted. */
  private static String read(Path file) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    var job =
        KubeTuneLocal.readFineTuneJob(
            file, ROOT, new PrintStream(out, true, StandardCharsets.UTF_8));
    String printed = out.toString(StandardCharsets.UTF_8);
    assertThat(job == null).isEqualTo(!printed.isEmpty());
    return printed;
  }
}
