package io.kubetune.trainer.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import io.kubetune.trainer.model.TextTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonlDatasetTest {
  @TempDir static Path dir;
  static TextTokenizer tokenizer;
  static final long BOS = ByteLevelBpeTokenizerJson.idOf("<s>");
  static final long EOS = ByteLevelBpeTokenizerJson.idOf("</s>");

  @BeforeAll
  static void tokenizer() throws Exception {
    ByteLevelBpeTokenizerJson.write(dir.resolve("tokenizer.json"));
    tokenizer = TextTokenizer.load(dir);
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  private static JsonlDataset dataset(DatasetFormat format, int maxLength) {
    return new JsonlDataset(
        format,
        JsonlDataset.Fields.DEFAULT,
        tokenizer,
        new JsonlDataset.SpecialTokens(BOS, EOS),
        maxLength);
  }

  private static String decodeWhere(Example e, boolean trained) {
    StringBuilder ids = new StringBuilder();
    long[] picked =
        java.util.stream.IntStream.range(0, e.tokens().length)
            .filter(t -> e.trainOn()[t] == trained)
            .mapToLong(t -> e.tokens()[t])
            .toArray();
    return ids.append(tokenizer.decode(picked)).toString();
  }

  @Test
  void chatLossCoversOnlyAssistantContentAndItsEndMarker() throws Exception {
    Path file = dir.resolve("chat.jsonl");
    Files.writeString(
        file,
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
            + " {\"role\": \"user\", \"content\": \"Hi there\"},"
            + " {\"role\": \"assistant\", \"content\": \"Hello!\"},"
            + " {\"role\": \"user\", \"content\": \"Bye\"},"
            + " {\"role\": \"assistant\", \"content\": \"Goodbye.\"}]}\n");
    Example e =
        dataset(DatasetFormat.CHAT, 512).tokenize(file, JsonlDataset.readLines(file), null).get(0);

    assertThat(e.tokens()[0]).isEqualTo(BOS);
    assertThat(tokenizer.decode(e.tokens()))
        .isEqualTo(
            "<s><|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n"
                + "<|user|>\nBye<|end|>\n<|assistant|>\nGoodbye.<|end|>\n");
    assertThat(decodeWhere(e, true)).isEqualTo("Hello!<|end|>\nGoodbye.<|end|>\n");
  }

  @Test
  void completionLossCoversCompletionAndEos() throws Exception {
    Path file = dir.resolve("completion.jsonl");
    Files.writeString(file, "{\"prompt\": \"2+2=\", \"completion\": \" four\"}\n");
    Example e =
        dataset(DatasetFormat.COMPLETION, 512)
            .tokenize(file, JsonlDataset.readLines(file), null)
            .get(0);
    assertThat(decodeWhere(e, false)).isEqualTo("<s>2+2=");
    assertThat(decodeWhere(e, true)).isEqualTo(" four</s>");
    assertThat(e.tokens()[e.tokens().length - 1]).isEqualTo(EOS);
  }

  @Test
  void classificationUsesTheLabelIndexAndEndsWithEos() throws Exception {
    Path file = dir.resolve("cls.jsonl");
    Files.writeString(
        file,
        "{\"text\": \"refund please\", \"label\": \"billing\"}\n\n{\"text\": \"crash\", \"label\": \"bug\"}\n");
    JsonlDataset dataset = dataset(DatasetFormat.CLASSIFICATION, 512);
    List<JsonlDataset.Line> lines = JsonlDataset.readLines(file);
    List<String> labels = dataset.labelsIn(file, lines);
    assertThat(labels).containsExactly("billing", "bug");
    List<Example> examples = dataset.tokenize(file, lines, labels);
    assertThat(examples.get(1).label()).isEqualTo(1);
    assertThat(lines.get(1).number()).as("blank lines keep numbering").isEqualTo(3);
  }

  @Test
  void missingFieldsAndBadRolesNameTheLine() throws Exception {
    Path file = dir.resolve("bad.jsonl");
    Files.writeString(file, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n");
    assertThatThrownBy(
            () ->
                dataset(DatasetFormat.COMPLETION, 512)
                    .tokenize(file, JsonlDataset.readLines(file), null))
        .isInstanceOf(BadInputException.class)
        .hasMessageEndingWith("bad.jsonl:2: missing string field 'completion'");

    Path chat = dir.resolve("role.jsonl");
    Files.writeString(chat, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n");
    assertThatThrownBy(
            () ->
                dataset(DatasetFormat.CHAT, 512).tokenize(chat, JsonlDataset.readLines(chat), null))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("role.jsonl:1: each message needs a role");

    assertThatThrownBy(() -> JsonlDataset.readLines(dir.resolve("missing.jsonl")))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("does not exist");
  }
}
