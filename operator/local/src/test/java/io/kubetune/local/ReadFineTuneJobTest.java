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
  void brokenYamlIsReported() throws Exception {
    Path file = dir.resolve("broken.yaml");
    Files.writeString(file, "kind: [FineTuneJob\n");
    assertThat(read(file)).contains("is not valid YAML");
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
