package io.kubetune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.storage.FileDigest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What transformers and PEFT need next to the exported weights to load and use them with no hand
 * work (docs/trainer.md, "Output"): the base's {@code tokenizer.json}, a {@code
 * tokenizer_config.json} that tokenises the way the trainer did (BOS, EOS after classification
 * text, a pad token, the chat template), a {@code generation_config.json}, the {@code
 * base_model_name_or_path} of an adapter and the record of the base (storage URI, digests).
 *
 * @param tokenizer the base's {@code tokenizer.json} with a post-processor that adds the special
 *     tokens as the trainer does
 * @param bosTokenId the token the trainer puts before every example (negative: none)
 * @param eosTokenIds the ids that end generation; the first is the one the trainer appends
 * @param padTokenId the padding id for batched inference, or null when the base has no token fit
 *     for it (see {@link #padToken})
 */
public record TransformersFiles(
    ObjectNode tokenizer,
    ObjectNode tokenizerConfig,
    ObjectNode generationConfig,
    long bosTokenId,
    List<Long> eosTokenIds,
    Long padTokenId) {

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The project's chat template (data/ChatTemplate.java: {@code <|role|>\n{content}<|end|>\n} per
   * message after BOS, {@code <|assistant|>\n} as generation prompt) in Jinja, for bases without a
   * {@code chat_template} of their own. Tested to render through transformers' {@code
   * apply_chat_template} exactly as the trainer renders chats.
   */
  public static final String PROJECT_CHAT_TEMPLATE =
      "{{ bos_token }}{% for message in messages %}"
          + "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
          + "{{ raise_exception('roles are system, user and assistant') }}{% endif %}"
          + "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
          + "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

  /** A Hugging Face Hub repository id ({@code owner/name}), which transformers resolves. */
  private static final Pattern HUB_ID = Pattern.compile("[A-Za-z0-9][\\w.-]*/[\\w.-]+");

  /**
   * Derives the files from the base model folder.
   *
   * @param bosTokenId the BOS id the trainer put before every example, or a negative number when
   *     the model adds none (Qwen)
   * @param eosTokenId the EOS id the trainer appended
   * @param classification whether the export is a classifier: its text is followed by EOS and the
   *     pad token must differ from EOS (transformers finds the last token as the last non-pad one)
   */
  public static TransformersFiles derive(
      Path baseDir, long bosTokenId, long eosTokenId, boolean classification) throws IOException {
    ObjectNode tokenizer = (ObjectNode) JSON.readTree(baseDir.resolve("tokenizer.json").toFile());
    JsonNode baseConfig = JSON.readTree(baseDir.resolve("config.json").toFile());
    Path tokenizerConfigFile = baseDir.resolve("tokenizer_config.json");
    ObjectNode tokenizerConfig =
        Files.exists(tokenizerConfigFile)
            ? (ObjectNode) JSON.readTree(tokenizerConfigFile.toFile())
            : JSON.createObjectNode();
    Path generationFile = baseDir.resolve("generation_config.json");
    ObjectNode generation =
        Files.exists(generationFile)
            ? (ObjectNode) JSON.readTree(generationFile.toFile())
            : JSON.createObjectNode();

    Map<Long, String> tokens = tokenContents(tokenizer);
    String bos = bosTokenId < 0 ? null : token(tokens, bosTokenId, "bos_token_id", baseDir);
    String eos = token(tokens, eosTokenId, "eos_token_id", baseDir);

    // Every id that ends a turn stops generation: the base's list (generation_config.json, else
    // config.json) and the trainer's EOS first.
    List<Long> eosIds = new ArrayList<>();
    eosIds.add(eosTokenId);
    JsonNode baseEos =
        generation.has("eos_token_id")
            ? generation.get("eos_token_id")
            : baseConfig.path("eos_token_id");
    if (baseEos.isArray()) {
      baseEos.forEach(n -> addOnce(eosIds, n.asLong()));
    } else if (baseEos.isIntegralNumber()) {
      addOnce(eosIds, baseEos.asLong());
    }
    Long pad = padToken(tokenizerConfig, baseConfig, tokens, eosTokenId, classification);

    if (bos != null) {
      tokenizerConfig.put("bos_token", bos);
    }
    tokenizerConfig.put("eos_token", eos);
    if (pad != null) {
      tokenizerConfig.put("pad_token", tokens.get(pad));
    }
    // The trainer puts BOS before every example (data/JsonlDataset.java) and EOS after a
    // classification text, not after a prompt. transformers 5 takes this from tokenizer.json's
    // post-processor (it ignores add_bos_token/add_eos_token when tokenizer.json exists);
    // transformers 4 rebuilds the post-processor from the flags.
    tokenizer.set(
        "post_processor",
        postProcessor(
            tokenizer.get("post_processor"),
            bos,
            bosTokenId,
            classification ? eos : null,
            eosTokenId));
    tokenizerConfig.put("add_bos_token", bos != null);
    tokenizerConfig.put("add_eos_token", classification);
    if (!tokenizerConfig.hasNonNull("tokenizer_class")) {
      tokenizerConfig.put("tokenizer_class", "PreTrainedTokenizerFast");
    }
    if (!tokenizerConfig.hasNonNull("chat_template")
        && !Files.exists(baseDir.resolve("chat_template.jinja"))) {
      tokenizerConfig.put("chat_template", PROJECT_CHAT_TEMPLATE);
    }

    if (bos != null) {
      generation.put("bos_token_id", bosTokenId);
    }
    if (eosIds.size() == 1) {
      generation.put("eos_token_id", eosIds.get(0));
    } else {
      var list = generation.putArray("eos_token_id");
      eosIds.forEach(list::add);
    }
    if (pad != null) {
      generation.put("pad_token_id", pad);
    }
    return new TransformersFiles(
        tokenizer, tokenizerConfig, generation, bosTokenId, List.copyOf(eosIds), pad);
  }

  /**
   * A post-processor that adds BOS (when {@code bos} is not null) and EOS (when {@code eos} is not
   * null) around a sequence, as transformers' {@code update_post_processor} builds it, keeping the
   * base's other processors (e.g. ByteLevel offsets) and replacing any special-token template of
   * its own.
   */
  static JsonNode postProcessor(JsonNode existing, String bos, long bosId, String eos, long eosId) {
    ObjectNode template = JSON.createObjectNode();
    template.put("type", "TemplateProcessing");
    // single: BOS $A [EOS]; pair: BOS $A [EOS] BOS $B [EOS], as transformers' template.
    var single = template.putArray("single");
    var pair = template.putArray("pair");
    if (bos != null) {
      addSpecial(single, bos, 0);
    }
    single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
    if (eos != null) {
      addSpecial(single, eos, 0);
    }
    pair.addAll(single);
    if (bos != null) {
      addSpecial(pair, bos, 1);
    }
    pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
    if (eos != null) {
      addSpecial(pair, eos, 1);
    }
    ObjectNode specials = template.putObject("special_tokens");
    if (bos != null) {
      specials.putObject(bos).put("id", bos).set("ids", JSON.createArrayNode().add(bosId));
      ((ObjectNode) specials.get(bos)).putArray("tokens").add(bos);
    }
    if (eos != null) {
      specials.putObject(eos).put("id", eos).set("ids", JSON.createArrayNode().add(eosId));
      ((ObjectNode) specials.get(eos)).putArray("tokens").add(eos);
    }
    List<JsonNode> kept = new ArrayList<>();
    if (existing != null && !existing.isNull()) {
      List<JsonNode> processors = new ArrayList<>();
      if (existing.path("type").asText().equals("Sequence")) {
        existing.path("processors").forEach(processors::add);
      } else {
        processors.add(existing);
      }
      for (JsonNode p : processors) {
        String type = p.path("type").asText();
        // Template, Bert and Roberta processors add special tokens: ours replaces them.
        if (!type.equals("TemplateProcessing")
            && !type.equals("BertProcessing")
            && !type.equals("RobertaProcessing")) {
          kept.add(p);
        }
      }
    }
    if (kept.isEmpty()) {
      return template;
    }
    ObjectNode sequence = JSON.createObjectNode();
    sequence.put("type", "Sequence");
    var list = sequence.putArray("processors");
    kept.forEach(list::add);
    list.add(template);
    return sequence;
  }

  private static void addSpecial(
      com.fasterxml.jackson.databind.node.ArrayNode parts, String token, int typeId) {
    parts.addObject().putObject("SpecialToken").put("id", token).put("type_id", typeId);
  }

  /**
   * The padding token: the base's own ({@code pad_token} of tokenizer_config.json, else {@code
   * pad_token_id} of config.json), else the first special token named like a pad token, else a
   * reserved special token; for a causal LM EOS as the last resort (as transformers users do). A
   * classifier's pad must differ from EOS, which ends every classified text. Null when nothing
   * fits: batched classification in transformers then raises its own "no padding token" error
   * rather than classify the wrong position.
   */
  static Long padToken(
      JsonNode tokenizerConfig,
      JsonNode baseConfig,
      Map<Long, String> tokens,
      long eosTokenId,
      boolean classification) {
    List<Long> candidates = new ArrayList<>();
    String configured = tokenText(tokenizerConfig.path("pad_token"));
    if (configured != null) {
      tokens.forEach(
          (id, content) -> {
            if (content.equals(configured)) {
              candidates.add(id);
            }
          });
    }
    if (baseConfig.path("pad_token_id").isIntegralNumber()) {
      candidates.add(baseConfig.get("pad_token_id").asLong());
    }
    for (String kind : List.of("pad", "reserved")) {
      tokens.forEach(
          (id, content) -> {
            if (id >= 0
                && content.toLowerCase(Locale.ROOT).contains(kind)
                && content.startsWith("<")) {
              candidates.add(id);
            }
          });
    }
    if (!classification) {
      candidates.add(eosTokenId);
    }
    for (Long id : candidates) {
      if (tokens.containsKey(id) && !(classification && id == eosTokenId)) {
        return id;
      }
    }
    return null;
  }

  /**
   * The {@code base_model_name_or_path} of an adapter, which {@code
   * AutoPeftModelFor*.from_pretrained(adapter)} loads: the Hub id the base was saved from (its
   * config.json's {@code _name_or_path}) when it has one, else the base's local folder for a local
   * or mounted base, else (object storage) the folder's name, under which a user downloads it.
   */
  public static String baseModelNameOrPath(Path baseDir, String baseUri) throws IOException {
    JsonNode config = JSON.readTree(baseDir.resolve("config.json").toFile());
    String saved = config.path("_name_or_path").asText("");
    if (HUB_ID.matcher(saved).matches() && !saved.startsWith(".")) {
      return saved;
    }
    if (baseUri == null
        || !baseUri.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")
        || baseUri.startsWith("file:")) {
      return baseDir.toAbsolutePath().normalize().toString();
    }
    String path = baseUri.replaceAll("/+$", "");
    return path.substring(path.lastIndexOf('/') + 1);
  }

  /**
   * The project's record of the base in adapter_config.json ({@code kubetune}): the storage URI it
   * was trained from and the SHA-256 of each of its weight files.
   */
  public static ObjectNode baseRecord(Path baseDir, String baseUri) throws IOException {
    ObjectNode record = JSON.createObjectNode();
    record.put("base_model_uri", baseUri);
    ObjectNode digests = record.putObject("base_model_sha256");
    for (String file : weightFiles(baseDir)) {
      digests.put(file, FileDigest.sha256(baseDir.resolve(file)));
    }
    return record;
  }

  /** model.safetensors, or the shards named by model.safetensors.index.json, sorted. */
  static List<String> weightFiles(Path baseDir) throws IOException {
    Path index = baseDir.resolve("model.safetensors.index.json");
    if (Files.exists(index)) {
      List<String> files = new ArrayList<>();
      JSON.readTree(index.toFile())
          .path("weight_map")
          .forEach(
              n -> {
                if (!files.contains(n.asText())) {
                  files.add(n.asText());
                }
              });
      files.sort(null);
      return files;
    }
    return List.of("model.safetensors");
  }

  /** Token id to content: the added (special) tokens, then the model's vocabulary. */
  static Map<Long, String> tokenContents(JsonNode tokenizer) {
    Map<Long, String> tokens = new LinkedHashMap<>();
    tokenizer
        .path("added_tokens")
        .forEach(t -> tokens.put(t.path("id").asLong(), t.path("content").asText()));
    JsonNode vocab = tokenizer.path("model").path("vocab");
    if (vocab.isObject()) {
      vocab.fields().forEachRemaining(e -> tokens.putIfAbsent(e.getValue().asLong(), e.getKey()));
    } else if (vocab.isArray()) {
      for (int i = 0; i < vocab.size(); i++) {
        tokens.putIfAbsent((long) i, vocab.get(i).path(0).asText());
      }
    }
    return tokens;
  }

  private static String token(Map<Long, String> tokens, long id, String field, Path baseDir) {
    String content = tokens.get(id);
    if (content == null) {
      throw new BadInputException(
          baseDir
              + "/config.json: "
              + field
              + " "
              + id
              + " is not a token of tokenizer.json; fix the model's config.json");
    }
    return content;
  }

  /** A special token in tokenizer_config.json: a string or {@code {"content": ...}}. */
  private static String tokenText(JsonNode node) {
    if (node.isTextual()) {
      return node.asText();
    }
    if (node.isObject() && node.path("content").isTextual()) {
      return node.get("content").asText();
    }
    return null;
  }

  private static void addOnce(List<Long> ids, long id) {
    if (!ids.contains(id)) {
      ids.add(id);
    }
  }
}
