package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import io.kubetune.trainer.model.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TransformersFilesTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void baseModelNameIsTheHubIdTheBaseWasSavedFromElseItsLocalFolderElseItsFolderName()
      throws Exception {
    Path base = dir.resolve("llama-tiny");
    TinyLlama.write(base, TinyLlama.TEST_SIZE, true, 1);
    assertThat(TransformersFiles.baseModelNameOrPath(base, "file://" + base))
        .isEqualTo(base.toAbsolutePath().toString());
    assertThat(TransformersFiles.baseModelNameOrPath(base, base.toString()))
        .isEqualTo(base.toAbsolutePath().toString());
    assertThat(TransformersFiles.baseModelNameOrPath(base, "s3://models/llama-tiny/"))
        .isEqualTo("llama-tiny");

    var config =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            JSON.readTree(base.resolve("config.json").toFile());
    config.put("_name_or_path", "HuggingFaceTB/SmolLM2-135M-Instruct");
    Files.writeString(base.resolve("config.json"), config.toString());
    assertThat(TransformersFiles.baseModelNameOrPath(base, "s3://models/smollm2/"))
        .isEqualTo("HuggingFaceTB/SmolLM2-135M-Instruct");
    config.put("_name_or_path", "/home/me/models/smollm2");
    Files.writeString(base.resolve("config.json"), config.toString());
    assertThat(TransformersFiles.baseModelNameOrPath(base, "s3://models/smollm2/"))
        .isEqualTo("smollm2");
  }

  @Test
  void aBaseWithoutTemplateOrPadGetsTheProjectTemplateAndItsPadTokenAndAClassifierEndsWithEos()
      throws Exception {
    Path base = dir.resolve("tiny");
    TinyLlama.write(base, TinyLlama.TEST_SIZE, true, 1);
    long bos = ByteLevelBpeTokenizerJson.idOf(ByteLevelBpeTokenizerJson.BOS);
    long eos = ByteLevelBpeTokenizerJson.idOf(ByteLevelBpeTokenizerJson.EOS);
    TransformersFiles files = TransformersFiles.derive(base, bos, eos, true);
    assertThat(files.tokenizerConfig().get("chat_template").asText())
        .isEqualTo(TransformersFiles.PROJECT_CHAT_TEMPLATE);
    assertThat(files.tokenizerConfig().get("pad_token").asText()).isEqualTo("<pad>");
    assertThat(files.padTokenId()).isEqualTo(ByteLevelBpeTokenizerJson.idOf("<pad>"));
    assertThat(files.tokenizer().at("/post_processor/single").toString())
        .isEqualTo(
            "[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
                + "{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}]");
    assertThat(files.generationConfig().toString())
        .contains("\"bos_token_id\":" + bos, "\"eos_token_id\":" + eos, "\"pad_token_id\":");

    TransformersFiles causal = TransformersFiles.derive(base, bos, eos, false);
    assertThat(causal.tokenizer().at("/post_processor/single").size()).isEqualTo(2);
    assertThat(causal.tokenizerConfig().get("add_eos_token").asBoolean()).isFalse();
  }
}
