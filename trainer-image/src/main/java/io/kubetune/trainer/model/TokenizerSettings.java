package io.kubetune.trainer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Optional;
import java.util.Set;

/**
 * What a model folder says about its tokens, read once when its tokenizer loads: the special tokens
 * (BOS, EOS, pad) from {@code tokenizer_config.json} and {@code special_tokens_map.json}, whether
 * the tokenizer adds BOS/EOS itself, every id that ends generation ({@code generation_config.json}
 * and {@code config.json} {@code eos_token_id}, an int or a list, plus the tokenizer's EOS), and
 * the model's Jinja chat template ({@code chat_template.jinja}, which transformers 5 writes and
 * prefers, else {@code tokenizer_config.json} {@code chat_template}).
 *
 * <p>A folder with neither {@code tokenizer_config.json} nor {@code special_tokens_map.json} (the
 * project's own models, {@code init-tiny-model}) follows the project's convention: BOS and EOS are
 * {@code config.json}'s {@code bos_token_id}/{@code eos_token_id} and every sequence starts with
 * BOS.
 */
public final class TokenizerSettings {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A special token: its text and its id in the vocabulary. */
  public record Token(String text, long id) {}

  /** A chat template and the file it was read from (named in error messages). */
  public record Template(String source, Path file) {}

  private final Token bos;
  private final Token eos;
  private final Token pad;
  private final boolean addBos;
  private final boolean addEos;
  private final Set<Long> stopIds;
  private final Template chatTemplate;
  private final Path modelDir;
  private final java.util.Map<String, String> templateVariables;

  private TokenizerSettings(
      Token bos,
      Token eos,
      Token pad,
      boolean addBos,
      boolean addEos,
      Set<Long> stopIds,
      Template chatTemplate,
      Path modelDir,
      java.util.Map<String, String> templateVariables) {
    this.templateVariables = java.util.Map.copyOf(templateVariables);
    this.bos = bos;
    this.eos = eos;
    this.pad = pad;
    this.addBos = addBos;
    this.addEos = addEos;
    this.stopIds = Set.copyOf(stopIds);
    this.chatTemplate = chatTemplate;
    this.modelDir = modelDir;
  }

  /** Looks tokens up in the tokenizer; implemented by {@link TextTokenizer}. */
  interface Vocabulary {
    /** Id of a token text that is exactly one token, or -1. */
    long tokenId(String token);

    /** Text of one token id. */
    String tokenText(long id);

    /** Token ids of "a" with the tokenizer's own special tokens (its post-processor). */
    long[] encodeWithSpecialTokens(String text);

    long[] encode(String text);
  }

  static TokenizerSettings read(Path modelDir, Vocabulary vocabulary) {
    JsonNode tokenizerConfig = readJson(modelDir.resolve("tokenizer_config.json"));
    JsonNode specialTokensMap = readJson(modelDir.resolve("special_tokens_map.json"));
    JsonNode generationConfig = readJson(modelDir.resolve("generation_config.json"));
    JsonNode modelConfig = readJson(modelDir.resolve("config.json"));
    Template template = readTemplate(modelDir, tokenizerConfig);
    Set<Long> stop = new LinkedHashSet<>();
    Token bos;
    Token eos;
    Token pad;
    boolean addBos;
    boolean addEos;
    if (tokenizerConfig == null && specialTokensMap == null) {
      // The project's convention for its own models: ids from config.json, BOS always added.
      bos = idToken(modelDir, "config.json", modelConfig, "bos_token_id", vocabulary);
      eos = idToken(modelDir, "config.json", modelConfig, "eos_token_id", vocabulary);
      pad = idToken(modelDir, "config.json", modelConfig, "pad_token_id", vocabulary);
      addBos = bos != null;
      addEos = false;
    } else {
      bos = namedToken(modelDir, tokenizerConfig, specialTokensMap, "bos_token", vocabulary);
      eos = namedToken(modelDir, tokenizerConfig, specialTokensMap, "eos_token", vocabulary);
      pad = namedToken(modelDir, tokenizerConfig, specialTokensMap, "pad_token", vocabulary);
      if (eos == null) {
        throw new BadInputException(
            modelDir.resolve("tokenizer_config.json")
                + " names no eos_token (nor does special_tokens_map.json); the trainer needs it to"
                + " end sequences; add it");
      }
      // transformers 5 ignores add_bos_token/add_eos_token when tokenizer.json exists and follows
      // its post-processor; transformers 4 honoured them. Follow the post-processor and refuse a
      // folder where the two disagree, since the model was trained one way or the other.
      long[] plain = vocabulary.encode("a");
      long[] withSpecial = vocabulary.encodeWithSpecialTokens("a");
      addBos =
          bos != null
              && withSpecial.length > plain.length
              && withSpecial[0] == bos.id()
              && plain.length > 0
              && plain[0] != bos.id();
      addEos = withSpecial.length > plain.length && withSpecial[withSpecial.length - 1] == eos.id();
      checkAgrees(modelDir, tokenizerConfig, "add_bos_token", addBos);
      checkAgrees(modelDir, tokenizerConfig, "add_eos_token", addEos);
      if (pad == null) {
        pad = idToken(modelDir, "config.json", modelConfig, "pad_token_id", vocabulary);
      }
    }
    if (eos != null) {
      stop.add(eos.id());
    }
    stop.addAll(ids(modelDir, "generation_config.json", generationConfig, "eos_token_id"));
    stop.addAll(ids(modelDir, "config.json", modelConfig, "eos_token_id"));
    // The named special tokens as chat-template variables, as transformers passes its
    // special_tokens_map (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
    // mask_token) to the template.
    java.util.Map<String, String> variables = new java.util.LinkedHashMap<>();
    for (String name :
        java.util.List.of(
            "bos_token",
            "eos_token",
            "unk_token",
            "sep_token",
            "pad_token",
            "cls_token",
            "mask_token")) {
      String text = tokenText(modelDir, "tokenizer_config.json", tokenizerConfig, name);
      if (text == null) {
        text = tokenText(modelDir, "special_tokens_map.json", specialTokensMap, name);
      }
      if (text != null) {
        variables.put(name, text);
      }
    }
    if (bos != null) {
      variables.put("bos_token", bos.text());
    }
    if (eos != null) {
      variables.put("eos_token", eos.text());
    }
    return new TokenizerSettings(
        bos, eos, pad, addBos, addEos, stop, template, modelDir, variables);
  }

  /** The named special tokens' texts, passed to the chat template (bos_token, eos_token, ...). */
  public java.util.Map<String, String> templateVariables() {
    return templateVariables;
  }

  /** The BOS token, if the model has one. */
  public Optional<Token> bos() {
    return Optional.ofNullable(bos);
  }

  /** The EOS token; a folder that names none is refused here, where it is needed. */
  public Token eos() {
    if (eos == null) {
      throw new BadInputException(
          modelDir
              + " names no EOS token (tokenizer_config.json eos_token, or config.json"
              + " eos_token_id for a folder without tokenizer_config.json); add it");
    }
    return eos;
  }

  public Optional<Token> pad() {
    return Optional.ofNullable(pad);
  }

  /**
   * Whether plain text starts with BOS when encoded with special tokens (as training data does).
   */
  public boolean addBos() {
    return addBos;
  }

  /** Whether the tokenizer itself appends EOS when encoding with special tokens. */
  public boolean addEos() {
    return addEos;
  }

  /** Every token id that ends generation. */
  public Set<Long> stopIds() {
    return stopIds;
  }

  /** The model's own chat template, if it has one. */
  public Optional<Template> chatTemplate() {
    return Optional.ofNullable(chatTemplate);
  }

  public Path modelDir() {
    return modelDir;
  }

  private static Template readTemplate(Path modelDir, JsonNode tokenizerConfig) {
    Path jinja = modelDir.resolve("chat_template.jinja");
    if (Files.isRegularFile(jinja)) {
      try {
        return new Template(Files.readString(jinja), jinja);
      } catch (IOException e) {
        throw new BadInputException("cannot read " + jinja + ": " + e.getMessage(), e);
      }
    }
    if (tokenizerConfig == null || tokenizerConfig.path("chat_template").isMissingNode()) {
      return null;
    }
    Path file = modelDir.resolve("tokenizer_config.json");
    JsonNode node = tokenizerConfig.get("chat_template");
    if (node.isNull()) {
      return null;
    }
    if (node.isTextual()) {
      return new Template(node.asText(), file);
    }
    if (node.isArray()) {
      // The older named form: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
      for (JsonNode entry : node) {
        if ("default".equals(entry.path("name").asText()) && entry.path("template").isTextual()) {
          return new Template(entry.get("template").asText(), file);
        }
      }
    }
    throw new BadInputException(
        file
            + ": chat_template must be a string or a list of named templates with one named"
            + " 'default'; fix it or remove it to use the project's chat template");
  }

  private static Token namedToken(
      Path modelDir,
      JsonNode tokenizerConfig,
      JsonNode specialTokensMap,
      String field,
      Vocabulary vocabulary) {
    String fileName = "tokenizer_config.json";
    String text = tokenText(modelDir, fileName, tokenizerConfig, field);
    if (text == null) {
      fileName = "special_tokens_map.json";
      text = tokenText(modelDir, fileName, specialTokensMap, field);
    }
    if (text == null) {
      return null;
    }
    long id = vocabulary.tokenId(text);
    if (id < 0) {
      throw new BadInputException(
          modelDir.resolve(fileName)
              + ": "
              + field
              + " '"
              + text
              + "' is not a single token of tokenizer.json; fix the token or the tokenizer");
    }
    return new Token(text, id);
  }

  /** A token given as a string or as an AddedToken object {"content": ...}; null if absent. */
  private static String tokenText(Path modelDir, String fileName, JsonNode config, String field) {
    if (config == null) {
      return null;
    }
    JsonNode node = config.get(field);
    if (node == null || node.isNull()) {
      return null;
    }
    if (node.isTextual()) {
      return node.asText();
    }
    if (node.isObject() && node.path("content").isTextual()) {
      return node.get("content").asText();
    }
    throw new BadInputException(
        modelDir.resolve(fileName)
            + ": "
            + field
            + " must be a string or an object with a string 'content'");
  }

  private static Token idToken(
      Path modelDir, String fileName, JsonNode config, String field, Vocabulary vocabulary) {
    Set<Long> ids = ids(modelDir, fileName, config, field);
    if (ids.isEmpty()) {
      return null;
    }
    long id = ids.iterator().next();
    return new Token(vocabulary.tokenText(id), id);
  }

  private static Set<Long> ids(Path modelDir, String fileName, JsonNode config, String field) {
    Set<Long> ids = new LinkedHashSet<>();
    if (config == null || config.get(field) == null || config.get(field).isNull()) {
      return ids;
    }
    JsonNode node = config.get(field);
    if (node.isIntegralNumber()) {
      ids.add(node.asLong());
      return ids;
    }
    if (node.isArray()) {
      for (JsonNode item : node) {
        if (!item.isIntegralNumber()) {
          throw new BadInputException(
              modelDir.resolve(fileName) + ": " + field + " must be an integer or a list of them");
        }
        ids.add(item.asLong());
      }
      return ids;
    }
    throw new BadInputException(
        modelDir.resolve(fileName) + ": " + field + " must be an integer or a list of them");
  }

  private static void checkAgrees(
      Path modelDir, JsonNode tokenizerConfig, String field, boolean tokenizerDoes) {
    if (tokenizerConfig == null || !tokenizerConfig.path(field).isBoolean()) {
      return;
    }
    boolean declared = tokenizerConfig.get(field).asBoolean();
    if (declared != tokenizerDoes) {
      throw new BadInputException(
          modelDir.resolve("tokenizer_config.json")
              + ": "
              + field
              + " is "
              + declared
              + " but tokenizer.json's post_processor "
              + (tokenizerDoes ? "adds" : "does not add")
              + " that token (transformers 5 follows tokenizer.json, transformers 4 the flag);"
              + " make them agree");
    }
  }

  private static JsonNode readJson(Path file) {
    if (!Files.isRegularFile(file)) {
      return null;
    }
    try {
      JsonNode node = JSON.readTree(file.toFile());
      if (node == null || !node.isObject()) {
        throw new BadInputException(file + " must hold a JSON object");
      }
      return node;
    } catch (IOException e) {
      throw new BadInputException(file + " is not valid JSON: " + e.getMessage(), e);
    }
  }
}
