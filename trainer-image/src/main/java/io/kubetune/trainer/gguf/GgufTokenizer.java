package io.kubetune.trainer.gguf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tokenizer a GGUF file describes, as Hugging Face files: {@code tokenizer.json} (byte-level
 * BPE from {@code tokenizer.ggml.tokens}, {@code merges} and {@code token_type}) and {@code
 * tokenizer_config.json} (special tokens, {@code add_bos_token}, the chat template). It follows
 * what transformers' GGUF tokenizer converter builds (integrations/gguf/gguf_tokenizer_mapping.py:
 * tokens outside the byte alphabet respelled by their UTF-8 bytes, CONTROL tokens added as special
 * tokens, USER_DEFINED ones as plain added tokens). Only byte-level BPE ({@code
 * tokenizer.ggml.model = gpt2}) and the pre-tokenizers listed in {@link #PRE_TOKENIZERS} are
 * implemented; anything else is refused.
 */
final class GgufTokenizer {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** llama.cpp's token types (llama_token_type). */
  private static final long CONTROL = 3;

  private static final long USER_DEFINED = 4;

  /**
   * Pre-tokenizers by {@code tokenizer.ggml.pre}. {@code smollm}: llama.cpp splits every number
   * character off ({@code \p{N}}), then applies GPT-2's regex, which is the original SmolLM2
   * tokenizer.json's {@code Digits(individual_digits) + ByteLevel}. (transformers' converter uses
   * GPT-2's ByteLevel alone for it; the two agree whenever no token holds a number character next
   * to another character, which holds for SmolLM2's vocabulary, and the tests check on digits.)
   */
  static final Set<String> PRE_TOKENIZERS = Set.of("smollm");

  final List<String> tokens;
  final long[] tokenTypes;
  final List<String> merges;
  final String preTokenizer;
  final boolean addBos;
  final Boolean addEos;
  final int bosId;
  final int eosId;
  final Integer padId;
  final Integer unkId;
  final List<Integer> endOfGenerationIds;
  final String chatTemplate;

  private GgufTokenizer(GgufFile gguf) {
    String model = gguf.string("tokenizer.ggml.model");
    if (!model.equals("gpt2")) {
      throw gguf.bad(
          "tokenizer.ggml.model is '"
              + model
              + "'; KubeTune converts byte-level BPE tokenizers only ('gpt2')");
    }
    preTokenizer = gguf.string("tokenizer.ggml.pre");
    if (!PRE_TOKENIZERS.contains(preTokenizer)) {
      throw gguf.bad(
          "tokenizer.ggml.pre is '"
              + preTokenizer
              + "', a pre-tokenizer KubeTune does not implement (supported: "
              + PRE_TOKENIZERS
              + ")");
    }
    if (gguf.has("tokenizer.ggml.add_space_prefix")
        && gguf.bool("tokenizer.ggml.add_space_prefix")) {
      throw gguf.bad("tokenizer.ggml.add_space_prefix is true, which KubeTune does not implement");
    }
    tokens = gguf.strings("tokenizer.ggml.tokens");
    tokenTypes = gguf.integers("tokenizer.ggml.token_type");
    if (tokenTypes.length != tokens.size()) {
      throw gguf.bad(
          "tokenizer.ggml.token_type has "
              + tokenTypes.length
              + " entries for "
              + tokens.size()
              + " tokens");
    }
    merges = gguf.strings("tokenizer.ggml.merges");
    for (String merge : merges) {
      if (merge.split(" ", -1).length != 2) {
        throw gguf.bad("tokenizer.ggml.merges entry '" + merge + "' is not two tokens");
      }
    }
    // Whether the tokenizer adds BOS changes every sequence: read it, never assume it.
    addBos = gguf.bool("tokenizer.ggml.add_bos_token");
    addEos =
        gguf.has("tokenizer.ggml.add_eos_token") ? gguf.bool("tokenizer.ggml.add_eos_token") : null;
    bosId = tokenId(gguf, "tokenizer.ggml.bos_token_id");
    eosId = tokenId(gguf, "tokenizer.ggml.eos_token_id");
    padId = optionalTokenId(gguf, "tokenizer.ggml.padding_token_id");
    unkId = optionalTokenId(gguf, "tokenizer.ggml.unknown_token_id");
    // llama.cpp stops generating at EOS, end-of-turn and end-of-message tokens.
    List<Integer> stops = new ArrayList<>(List.of(eosId));
    for (String key : List.of("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")) {
      Integer id = optionalTokenId(gguf, key);
      if (id != null && !stops.contains(id)) {
        stops.add(id);
      }
    }
    endOfGenerationIds = List.copyOf(stops);
    chatTemplate =
        gguf.has("tokenizer.chat_template") ? gguf.string("tokenizer.chat_template") : null;
  }

  static GgufTokenizer read(GgufFile gguf) {
    return new GgufTokenizer(gguf);
  }

  private int tokenId(GgufFile gguf, String key) {
    long id = gguf.integer(key);
    if (id < 0 || id >= tokens.size()) {
      throw gguf.bad(key + " is " + id + ", outside the " + tokens.size() + "-token vocabulary");
    }
    return (int) id;
  }

  private Integer optionalTokenId(GgufFile gguf, String key) {
    return gguf.has(key) ? tokenId(gguf, key) : null;
  }

  String token(int id) {
    return tokens.get(id);
  }

  /** {@code tokenizer.json}, as the Hugging Face tokenizers library reads it. */
  ObjectNode tokenizerJson(GgufFile gguf) {
    char[] byteToUnicode = ByteLevelBpeTokenizerJson.byteToUnicode();
    Set<Character> alphabet = new HashSet<>();
    for (char c : byteToUnicode) {
      alphabet.add(c);
    }
    Map<String, Integer> vocab = new LinkedHashMap<>();
    Map<String, Integer> firstId = new HashMap<>();
    for (int id = 0; id < tokens.size(); id++) {
      String spelled = spell(tokens.get(id), alphabet, byteToUnicode);
      Integer earlier = firstId.putIfAbsent(spelled, id);
      if (earlier != null) {
        throw gguf.bad(
            "tokens " + earlier + " and " + id + " are both '" + spelled + "' in byte-level form");
      }
      vocab.put(spelled, id);
    }

    ObjectNode root = JSON.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    for (int id = 0; id < tokens.size(); id++) {
      String token = tokens.get(id);
      boolean control = tokenTypes[id] == CONTROL && inAlphabet(token, alphabet);
      boolean userDefined = tokenTypes[id] == USER_DEFINED && inAlphabet(token, alphabet);
      // A CONTROL token outside the byte alphabet is a llama.cpp mislabel, and a USER_DEFINED one
      // is not in the respelled vocabulary; transformers skips both, so they stay ordinary
      // vocabulary entries here too.
      if (control || userDefined) {
        ObjectNode t = added.addObject();
        t.put("id", id);
        t.put("content", token);
        t.put("single_word", false);
        t.put("lstrip", false);
        t.put("rstrip", false);
        t.put("normalized", false);
        t.put("special", control);
      }
    }
    root.putNull("normalizer");
    ObjectNode pre = root.putObject("pre_tokenizer");
    pre.put("type", "Sequence");
    ArrayNode steps = pre.putArray("pretokenizers");
    steps.addObject().put("type", "Digits").put("individual_digits", true);
    steps
        .addObject()
        .put("type", "ByteLevel")
        .put("add_prefix_space", false)
        .put("trim_offsets", true)
        .put("use_regex", true);
    root.set("post_processor", postProcessor());
    root.putObject("decoder")
        .put("type", "ByteLevel")
        .put("add_prefix_space", true)
        .put("trim_offsets", true)
        .put("use_regex", true);
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.put("continuing_subword_prefix", "");
    model.put("end_of_word_suffix", "");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    model.put("ignore_merges", false);
    ObjectNode vocabNode = model.putObject("vocab");
    vocab.forEach(vocabNode::put);
    ArrayNode mergeNode = model.putArray("merges");
    for (String merge : merges) {
      String[] pair = merge.split(" ", -1);
      mergeNode.addArray().add(pair[0]).add(pair[1]);
    }
    return root;
  }

  /** BOS and/or EOS around each sequence when the file says to add them; none otherwise. */
  private ObjectNode postProcessor() {
    boolean eos = addEos != null && addEos;
    if (!addBos && !eos) {
      return null;
    }
    ObjectNode node = JSON.createObjectNode();
    node.put("type", "TemplateProcessing");
    ArrayNode single = node.putArray("single");
    ArrayNode pair = node.putArray("pair");
    ObjectNode specials = node.putObject("special_tokens");
    for (int sequence = 0; sequence < 2; sequence++) {
      ArrayNode target = sequence == 0 ? single : pair;
      for (int part = 0; part <= sequence; part++) {
        String id = part == 0 ? "A" : "B";
        if (addBos) {
          target.addObject().putObject("SpecialToken").put("id", token(bosId)).put("type_id", part);
        }
        target.addObject().putObject("Sequence").put("id", id).put("type_id", part);
        if (eos) {
          target.addObject().putObject("SpecialToken").put("id", token(eosId)).put("type_id", part);
        }
      }
    }
    Set<Integer> added = new LinkedHashSet<>();
    if (addBos) {
      added.add(bosId);
    }
    if (eos) {
      added.add(eosId);
    }
    for (int id : added) {
      ObjectNode special = specials.putObject(token(id));
      special.put("id", token(id));
      special.putArray("ids").add(id);
      special.putArray("tokens").add(token(id));
    }
    return node;
  }

  /** {@code tokenizer_config.json}: special tokens, BOS/EOS flags, length and chat template. */
  ObjectNode tokenizerConfig(int contextLength) {
    ObjectNode node = JSON.createObjectNode();
    node.put("tokenizer_class", "PreTrainedTokenizerFast");
    node.put("bos_token", token(bosId));
    node.put("eos_token", token(eosId));
    if (padId != null) {
      node.put("pad_token", token(padId));
    }
    if (unkId != null) {
      node.put("unk_token", token(unkId));
    }
    node.put("add_bos_token", addBos);
    if (addEos != null) {
      node.put("add_eos_token", addEos);
    }
    node.put("clean_up_tokenization_spaces", false);
    node.put("model_max_length", contextLength);
    if (chatTemplate != null) {
      node.put("chat_template", chatTemplate);
    }
    return node;
  }

  private static boolean inAlphabet(String token, Set<Character> alphabet) {
    for (int i = 0; i < token.length(); i++) {
      if (!alphabet.contains(token.charAt(i))) {
        return false;
      }
    }
    return true;
  }

  /** The token in the byte alphabet: as is when it already is, else its UTF-8 bytes mapped. */
  private static String spell(String token, Set<Character> alphabet, char[] byteToUnicode) {
    if (inAlphabet(token, alphabet)) {
      return token;
    }
    StringBuilder out = new StringBuilder();
    for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
      out.append(byteToUnicode[b & 0xFF]);
    }
    return out.toString();
  }
}
