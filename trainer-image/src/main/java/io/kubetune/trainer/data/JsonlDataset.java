package io.kubetune.trainer.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.model.TextTokenizer;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * Reads and tokenizes a JSONL dataset. Every problem is a {@link BadInputException} naming the
 * file, the 1-based line and the fix.
 */
public final class JsonlDataset {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Field names (the API's {@code dataset.fields}); defaults are the format's standard names. */
  public record Fields(
      String prompt, String completion, String messages, String text, String label) {
    public static final Fields DEFAULT =
        new Fields("prompt", "completion", "messages", "text", "label");
  }

  /**
   * Token ids of the special tokens the formats add: {@code bos} starts every completion and
   * classification record (-1: the model adds no BOS), {@code eos} ends them.
   */
  public record SpecialTokens(long bos, long eos) {
    public static final long NONE = -1;

    /** BOS if the model's tokenizer adds it to plain text, and its EOS. */
    public static SpecialTokens of(io.kubetune.trainer.model.TokenizerSettings settings) {
      long bos = settings.addBos() ? settings.bos().map(t -> t.id()).orElse(NONE) : NONE;
      return new SpecialTokens(bos, settings.eos().id());
    }
  }

  private final DatasetFormat format;
  private final Fields fields;
  private final TextTokenizer tokenizer;
  private final SpecialTokens special;
  private final int maxSequenceLength;
  private final ChatTemplate chatTemplate;

  /** A dataset whose chats use KubeTune's template. */
  public JsonlDataset(
      DatasetFormat format,
      Fields fields,
      TextTokenizer tokenizer,
      SpecialTokens special,
      int maxSequenceLength) {
    this(format, fields, tokenizer, special, null, maxSequenceLength);
  }

  /**
   * A dataset whose chats are rendered with {@code chatTemplate}, the model's own template (null:
   * KubeTune's).
   */
  public JsonlDataset(
      DatasetFormat format,
      Fields fields,
      TextTokenizer tokenizer,
      SpecialTokens special,
      ChatTemplate chatTemplate,
      int maxSequenceLength) {
    this.chatTemplate = chatTemplate;
    this.format = format;
    this.fields = fields;
    this.tokenizer = tokenizer;
    this.special = special;
    this.maxSequenceLength = maxSequenceLength;
  }

  /** The parsed lines of a file as JSON objects, with their line numbers. */
  public record Line(int number, JsonNode json) {}

  /**
   * Reads the JSON object on each line. Lines end with LF or CRLF; blank lines are skipped (and
   * still counted); a UTF-8 byte-order mark at the start of the file is skipped. Bytes that are not
   * UTF-8 are refused with the line number, never replaced.
   */
  public static List<Line> readLines(Path file) {
    return readLines(file, "dataset.train");
  }

  /** As {@link #readLines(Path)}; {@code field} names the setting that gave the file. */
  public static List<Line> readLines(Path file, String field) {
    List<Line> lines = new ArrayList<>();
    CharsetDecoder utf8 =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
      ByteArrayOutputStream buffer = new ByteArrayOutputStream();
      int number = 0;
      boolean more = true;
      while (more) {
        buffer.reset();
        int b;
        while ((b = in.read()) != -1 && b != '\n') {
          buffer.write(b);
        }
        more = b != -1;
        if (!more && buffer.size() == 0) {
          break; // the file ended with a line break
        }
        number++;
        byte[] bytes = buffer.toByteArray();
        int start = number == 1 && startsWithBom(bytes) ? UTF8_BOM.length : 0;
        int end = bytes.length;
        if (end > start && bytes[end - 1] == '\r') {
          end--; // CRLF
        }
        String text;
        try {
          text = utf8.decode(ByteBuffer.wrap(bytes, start, end - start)).toString();
        } catch (CharacterCodingException e) {
          throw new BadInputException(
              file
                  + ":"
                  + number
                  + ": not valid UTF-8 (byte offset "
                  + firstInvalidUtf8(bytes, start, end)
                  + " in the line); save the file as UTF-8");
        }
        if (text.isBlank()) {
          continue;
        }
        JsonNode node;
        try {
          node = JSON.readTree(text);
        } catch (IOException e) {
          throw new BadInputException(
              file + ":" + number + ": not valid JSON (" + firstLine(e.getMessage()) + ")");
        }
        if (!node.isObject()) {
          throw new BadInputException(
              file + ":" + number + ": expected a JSON object per line, got " + typeName(node));
        }
        lines.add(new Line(number, node));
      }
    } catch (NoSuchFileException e) {
      throw new BadInputException("dataset file " + file + " does not exist; check " + field);
    } catch (IOException e) {
      throw new BadInputException("cannot read dataset " + file + ": " + e.getMessage(), e);
    }
    if (lines.isEmpty()) {
      throw new BadInputException("dataset " + file + " has no records");
    }
    return lines;
  }

  private static final byte[] UTF8_BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

  private static boolean startsWithBom(byte[] bytes) {
    return bytes.length >= 3
        && bytes[0] == UTF8_BOM[0]
        && bytes[1] == UTF8_BOM[1]
        && bytes[2] == UTF8_BOM[2];
  }

  /** Offset (from the line's first byte) of the first byte that does not decode as UTF-8. */
  private static int firstInvalidUtf8(byte[] bytes, int start, int end) {
    CharsetDecoder decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteBuffer in = ByteBuffer.wrap(bytes, start, end - start);
    CharBuffer out = CharBuffer.allocate(end - start + 1);
    decoder.decode(in, out, true);
    return in.position();
  }

  /** The JSON type of a value as a user would name it: "a number", "null", "an array"... */
  static String typeName(JsonNode value) {
    return switch (value.getNodeType()) {
      case STRING -> "a string";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case NULL -> "null";
      case ARRAY -> "an array";
      case OBJECT, POJO -> "an object";
      default -> value.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
    };
  }

  /** Labels found in the lines, sorted: the default label set for classification. */
  public List<String> labelsIn(Path file, List<Line> lines) {
    TreeSet<String> labels = new TreeSet<>();
    for (Line line : lines) {
      labels.add(text(file, line, fields.label()));
    }
    return List.copyOf(labels);
  }

  /**
   * A held-out record as a generation task: the text that prompts the answer and the answer
   * expected. For completion records the prompt is {@code prompt} and the reference {@code
   * completion}; for chat records the conversation is every message before the last assistant
   * message, which is the reference (later messages are not used).
   */
  public record GenerationCase(
      int line, String prompt, List<ChatTemplate.Message> conversation, String reference) {}

  /**
   * The generation cases of the lines (completion and chat formats), in file order; a chat record
   * without an assistant message is refused, as for training.
   */
  public List<GenerationCase> generationCases(Path file, List<Line> lines) {
    List<GenerationCase> cases = new ArrayList<>(lines.size());
    for (Line line : lines) {
      switch (format) {
        case COMPLETION ->
            cases.add(
                new GenerationCase(
                    line.number(),
                    text(file, line, fields.prompt()),
                    null,
                    text(file, line, fields.completion())));
        case CHAT -> {
          List<ChatTemplate.Message> messages = messages(file, line);
          int last = -1;
          for (int i = 0; i < messages.size(); i++) {
            if (messages.get(i).role().equals("assistant")) {
              last = i;
            }
          }
          if (last < 0) {
            throw new BadInputException(
                file
                    + ":"
                    + line.number()
                    + ": the record has no completion/assistant tokens to learn");
          }
          cases.add(
              new GenerationCase(
                  line.number(),
                  null,
                  List.copyOf(messages.subList(0, last)),
                  messages.get(last).content()));
        }
        case CLASSIFICATION ->
            throw new IllegalStateException("classification records have no text to generate");
      }
    }
    return cases;
  }

  /** Tokenizes every line; {@code labels} is the class list for classification (else null). */
  public List<Example> tokenize(Path file, List<Line> lines, List<String> labels) {
    List<Example> examples = new ArrayList<>(lines.size());
    for (Line line : lines) {
      List<Example> fromLine =
          switch (format) {
            case COMPLETION -> List.of(completion(file, line));
            case CHAT -> chatTemplate == null ? List.of(chat(file, line)) : modelChat(file, line);
            case CLASSIFICATION -> List.of(classification(file, line, labels));
          };
      for (Example example : fromLine) {
        check(file, line, example);
        examples.add(example);
      }
    }
    return examples;
  }

  private void check(Path file, Line line, Example example) {
    {
      if (example.tokens().length > maxSequenceLength) {
        throw new BadInputException(
            file
                + ":"
                + line.number()
                + ": the record is "
                + example.tokens().length
                + " tokens, over maxSequenceLength "
                + maxSequenceLength
                + "; shorten it or raise hyperparameters.maxSequenceLength");
      }
      if (format != DatasetFormat.CLASSIFICATION && example.targetCount() == 0) {
        throw new BadInputException(
            file
                + ":"
                + line.number()
                + ": the record has no completion/assistant tokens to learn");
      }
    }
  }

  private Example completion(Path file, Line line) {
    Sequence seq = new Sequence();
    addBos(seq);
    seq.add(tokenizer.encode(text(file, line, fields.prompt())), false);
    seq.add(tokenizer.encode(text(file, line, fields.completion())), true);
    seq.add(new long[] {special.eos()}, true);
    return seq.toExample(Example.NO_LABEL);
  }

  private void addBos(Sequence seq) {
    if (special.bos() != SpecialTokens.NONE) {
      seq.add(new long[] {special.bos()}, false);
    }
  }

  /**
   * A conversation rendered with the model's template, tokenized as one text the way transformers'
   * {@code apply_chat_template(tokenize=True)} does (special tokens recognised, nothing added: the
   * template writes BOS itself if the model wants one); the targets are the tokens that overlap an
   * assistant span (transformers' rule for its assistant mask).
   */
  private List<Example> modelChat(Path file, Line line) {
    List<ChatTemplate.Message> messages = messages(file, line);
    List<Example> examples = new ArrayList<>();
    for (ChatTemplate.Rendered rendered :
        chatTemplate.trainingExamples(messages, file + ":" + line.number())) {
      String text = rendered.text();
      TextTokenizer.Encoded encoded = tokenizer.encodeWithOffsets(text);
      boolean[] trainOn = new boolean[encoded.ids().length];
      for (int[] span : rendered.assistantSpans()) {
        // Tokenizer offsets count code points; the spans count UTF-16 units.
        int start = text.codePointCount(0, span[0]);
        int end = text.codePointCount(0, span[1]);
        for (int t = 0; t < trainOn.length; t++) {
          if (encoded.starts()[t] < end && encoded.ends()[t] > start) {
            trainOn[t] = true;
          }
        }
      }
      examples.add(new Example(encoded.ids(), trainOn, Example.NO_LABEL));
    }
    return examples;
  }

  /**
   * The conversation of a chat record; a wrong JSON type names the element, e.g. {@code
   * messages[2].content must be a string, got null}.
   */
  private List<ChatTemplate.Message> messages(Path file, Line line) {
    String where = file + ":" + line.number() + ": ";
    String field = fields.messages();
    JsonNode messages = line.json().get(field);
    if (messages == null) {
      throw new BadInputException(
          where + "missing field '" + field + "' (a non-empty array of messages)");
    }
    if (!messages.isArray() || messages.isEmpty()) {
      throw new BadInputException(
          where
              + "field '"
              + field
              + "' must be a non-empty array of messages, got "
              + (messages.isArray() ? "an empty array" : typeName(messages)));
    }
    List<ChatTemplate.Message> parsed = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      JsonNode message = messages.get(i);
      String element = field + "[" + i + "]";
      if (!message.isObject()) {
        throw new BadInputException(
            where
                + "'"
                + element
                + "' must be an object with role and content, got "
                + typeName(message));
      }
      String role = messageString(where, message, element, "role");
      if (!ChatTemplate.ROLES.contains(role)) {
        throw new BadInputException(
            where
                + "'"
                + element
                + ".role' is '"
                + role
                + "'; each message needs a role (system, user or assistant)");
      }
      parsed.add(new ChatTemplate.Message(role, messageString(where, message, element, "content")));
    }
    return parsed;
  }

  private static String messageString(String where, JsonNode message, String element, String key) {
    JsonNode value = message.get(key);
    if (value == null) {
      throw new BadInputException(where + "'" + element + "' has no '" + key + "'");
    }
    if (!value.isTextual()) {
      throw new BadInputException(
          where + "'" + element + "." + key + "' must be a string, got " + typeName(value));
    }
    return value.asText();
  }

  private Example chat(Path file, Line line) {
    List<ChatTemplate.Message> messages = messages(file, line);
    Sequence seq = new Sequence();
    addBos(seq);
    for (ChatTemplate.Message message : messages) {
      boolean learn = message.role().equals("assistant");
      seq.add(tokenizer.encode(ChatTemplate.header(message.role())), false);
      seq.add(tokenizer.encode(message.content()), learn);
      seq.add(tokenizer.encode(ChatTemplate.footer()), learn);
    }
    return seq.toExample(Example.NO_LABEL);
  }

  private Example classification(Path file, Line line, List<String> labels) {
    String label = text(file, line, fields.label());
    int index = labels.indexOf(label);
    if (index < 0) {
      throw new BadInputException(
          file
              + ":"
              + line.number()
              + ": label '"
              + label
              + "' is not in the label set "
              + labels
              + "; fix the record or dataset.labels");
    }
    Sequence seq = new Sequence();
    addBos(seq);
    seq.add(tokenizer.encode(text(file, line, fields.text())), false);
    // The head reads the last token; a fixed end token gives it a stable summary position.
    seq.add(new long[] {special.eos()}, false);
    return seq.toExample(index);
  }

  private static String text(Path file, Line line, String field) {
    JsonNode value = line.json().get(field);
    if (value == null) {
      throw new BadInputException(
          file + ":" + line.number() + ": missing string field '" + field + "'");
    }
    if (!value.isTextual()) {
      throw new BadInputException(
          file
              + ":"
              + line.number()
              + ": field '"
              + field
              + "' must be a string, got "
              + typeName(value));
    }
    return value.asText();
  }

  private static String firstLine(String message) {
    int newline = message.indexOf('\n');
    return newline < 0 ? message : message.substring(0, newline);
  }

  /** Accumulates token ids with a per-token "is a target" flag. */
  private static final class Sequence {
    private final List<long[]> parts = new ArrayList<>();
    private final List<Boolean> learn = new ArrayList<>();
    private int length;

    void add(long[] ids, boolean train) {
      parts.add(ids);
      learn.add(train);
      length += ids.length;
    }

    Example toExample(int label) {
      long[] tokens = new long[length];
      boolean[] trainOn = new boolean[length];
      int pos = 0;
      for (int i = 0; i < parts.size(); i++) {
        long[] ids = parts.get(i);
        System.arraycopy(ids, 0, tokens, pos, ids.length);
        java.util.Arrays.fill(trainOn, pos, pos + ids.length, learn.get(i));
        pos += ids.length;
      }
      return new Example(tokens, trainOn, label);
    }
  }
}
