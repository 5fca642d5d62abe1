package io.kubetune.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The reference stack is installed and importable, so the comparisons that use it really run. */
class TestbedTest {

  @Test
  void referenceStackImportsAtThePinnedVersions() throws Exception {
    String versions = Testbed.run("testbed_check.py", List.of(), 120).orThrow();
    String pinned = Files.readString(Testbed.script("requirements.txt"));
    assertThat(pinned).contains("torch==2.15.0", "transformers==5.24.0", "peft==0.21.2");
    assertThat(versions).contains("\"transformers\": \"5.24.0\"", "\"peft\": \"0.21.2\"");
  }

  @Test
  void realTokenizersAreFetched() {
    assertThat(Testbed.tokenizer("llama3_1").resolve("tokenizer_config.json")).exists();
    assertThat(Testbed.tokenizer("qwen3").resolve("tokenizer_config.json")).exists();
  }
}
