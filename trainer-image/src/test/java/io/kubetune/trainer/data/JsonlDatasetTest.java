package io.kubetune.trainer.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import io.kubetune.trainer.model.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
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
        .hasMessageContaining(
            "role.jsonl:1: 'messages[0].role' is 'robot'; each message needs a role");

    assertThatThrownBy(() -> JsonlDataset.readLines(dir.resolve("missing.jsonl")))
        .isInstanceOf(BadInputException.class)
        .hasMessageEndingWith("does not exist; check dataset.train");
    assertThatThrownBy(
            () -> JsonlDataset.readLines(dir.resolve("missing.jsonl"), "dataset.validation"))
        .isInstanceOf(BadInputException.class)
        .hasMessageEndingWith("does not exist; check dataset.validation");
  }

  private static Path write(String name, byte[] bytes) throws Exception {
    Path file = dir.resolve(name);
    Files.write(file, bytes);
    return file;
  }

  private static byte[] utf8(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void invalidUtf8NamesTheFileAndLine() throws Exception {
    // Line 2 holds Latin-1 "café" (0xE9 alone is not UTF-8).
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    bytes.write(utf8("{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"caf"));
    bytes.write(0xE9);
    bytes.write(utf8("\", \"completion\": \"b\"}\n"));
    Path file = write("latin1.jsonl", bytes.toByteArray());
    assertThatThrownBy(() -> JsonlDataset.readLines(file))
        .isInstanceOf(BadInputException.class)
        .hasMessage(
            file + ":2: not valid UTF-8 (byte offset 15 in the line); save the file as UTF-8");
  }

  @Test
  void aUtf8ByteOrderMarkAtTheStartIsSkipped() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    bytes.write(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF});
    bytes.write(utf8("{\"prompt\": \"2+2=\", \"completion\": \" four\"}\n"));
    Path file = write("bom.jsonl", bytes.toByteArray());
    List<JsonlDataset.Line> lines = JsonlDataset.readLines(file);
    assertThat(lines).hasSize(1);
    assertThat(lines.get(0).json().get("prompt").asText()).isEqualTo("2+2=");
    Example e = dataset(DatasetFormat.COMPLETION, 512).tokenize(file, lines, null).get(0);
    assertThat(decodeWhere(e, false)).isEqualTo("<s>2+2=");
  }

  @Test
  void crlfLineEndingsAndBlankLinesWork() throws Exception {
    Path file =
        write(
            "crlf.jsonl",
            utf8(
                "{\"text\": \"refund\", \"label\": \"billing\"}\r\n\r\n  \t\r\n"
                    + "{\"text\": \"crash\", \"label\": \"bug\"}\r\n"));
    List<JsonlDataset.Line> lines = JsonlDataset.readLines(file);
    assertThat(lines).extracting(JsonlDataset.Line::number).containsExactly(1, 4);
    assertThat(lines.get(1).json().get("label").asText()).isEqualTo("bug");

    Path blank = write("blank.jsonl", utf8("\r\n \n\n"));
    assertThatThrownBy(() -> JsonlDataset.readLines(blank))
        .isInstanceOf(BadInputException.class)
        .hasMessage("dataset " + blank + " has no records");
  }

  @Test
  void aLineThatIsNotAnObjectSaysWhatItIs() throws Exception {
    Path file = write("array.jsonl", utf8("[1, 2]\n"));
    assertThatThrownBy(() -> JsonlDataset.readLines(file))
        .isInstanceOf(BadInputException.class)
        .hasMessage(file + ":1: expected a JSON object per line, got an array");
  }

  @Test
  void aNonStringLabelSaysWhatItGot() throws Exception {
    Path file =
        write(
            "numeric-label.jsonl",
            utf8("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": 1}\n"));
    JsonlDataset dataset = dataset(DatasetFormat.CLASSIFICATION, 512);
    assertThatThrownBy(() -> dataset.labelsIn(file, JsonlDataset.readLines(file)))
        .isInstanceOf(BadInputException.class)
        .hasMessage(file + ":2: field 'label' must be a string, got a number");
  }

  @Test
  void wrongJsonTypesNameTheFieldTheLineAndTheTypeFound() throws Exception {
    assertRefused(
        DatasetFormat.COMPLETION,
        "{\"prompt\": null, \"completion\": \"b\"}",
        "field 'prompt' must be a string, got null");
    assertRefused(
        DatasetFormat.COMPLETION,
        "{\"prompt\": \"a\", \"completion\": [\"b\"]}",
        "field 'completion' must be a string, got an array");
    assertRefused(
        DatasetFormat.CLASSIFICATION,
        "{\"text\": {\"t\": 1}, \"label\": \"x\"}",
        "field 'text' must be a string, got an object");
    assertRefused(
        DatasetFormat.CHAT,
        "{\"messages\": {\"role\": \"user\"}}",
        "field 'messages' must be a non-empty array of messages, got an object");
    assertRefused(
        DatasetFormat.CHAT,
        "{\"messages\": []}",
        "field 'messages' must be a non-empty array of messages, got an empty array");
    assertRefused(
        DatasetFormat.CHAT,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, \"hello\"]}",
        "'messages[1]' must be an object with role and content, got a string");
    assertRefused(
        DatasetFormat.CHAT,
        "{\"messages\": [{\"role\": 1, \"content\": \"hi\"}]}",
        "'messages[0].role' must be a string, got a number");
    assertRefused(
        DatasetFormat.CHAT,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"},"
            + " {\"role\": \"assistant\", \"content\": null}]}",
        "'messages[1].content' must be a string, got null");
    assertRefused(
        DatasetFormat.CHAT,
        "{\"messages\": [{\"role\": \"user\"}]}",
        "'messages[0]' has no 'content'");
  }

  private static void assertRefused(DatasetFormat format, String record, String problem)
      throws Exception {
    Path file = write("wrong-type.jsonl", utf8("\n" + record + "\n"));
    JsonlDataset dataset = dataset(format, 512);
    assertThatThrownBy(
            () -> {
              List<JsonlDataset.Line> lines = JsonlDataset.readLines(file);
              List<String> labels = format == DatasetFormat.CLASSIFICATION ? List.of("x") : null;
              dataset.tokenize(file, lines, labels);
            })
        .isInstanceOf(BadInputException.class)
        .hasMessage(file + ":2: " + problem);
  }
}
