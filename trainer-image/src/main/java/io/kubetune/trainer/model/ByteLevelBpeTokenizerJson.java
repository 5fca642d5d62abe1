package io.kubetune.trainer.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a GPT-2-style byte-level BPE {@code tokenizer.json} that Hugging Face tokenizers (and so
 * DJL's {@code HuggingFaceTokenizer}) load offline: the 256 byte symbols (ids 0-255, in byte
 * order), a short fixed list of English merges, then the special tokens. Any UTF-8 text encodes
 * without unknown tokens, so it suits tiny test models.
 */
public final class ByteLevelBpeTokenizerJson {

  public static final String BOS = "<s>";
  public static final String EOS = "</s>";
  public static final String PAD = "<pad>";

  /** Chat template markers; see {@code docs/trainer.md}. */
  public static final List<String> CHAT_MARKERS =
      List.of("<|system|>", "<|user|>", "<|assistant|>", "<|end|>");

  /**
   * Merges in priority order ("Ġ" is the byte-level symbol for a space). Each result is added to
   * the vocabulary after the bytes.
   */
  static final List<String> MERGES =
      List.of(
          "Ġ t", "h e", "i n", "e r", "a n", "Ġ a", "o n", "r e", "Ġt he", "Ġ s", "e n", "a t",
          "o r", "Ġ o", "Ġ w", "e s", "i s", "Ġ c", "i t", "Ġ b", "Ġ i", "a l", "a r", "Ġ p", "Ġ f",
          "in g", "e d", "o u", "Ġ m", "l e", "Ġ d", "Ġt o", "Ġa n", "Ġo f", "Ġ h", "l l");

  private ByteLevelBpeTokenizerJson() {}

  /** GPT-2's reversible mapping from bytes to printable unicode characters. */
  public static char[] byteToUnicode() {
    List<Integer> printable = new ArrayList<>();
    for (int b = '!'; b <= '~'; b++) {
      printable.add(b);
    }
    for (int b = 0xA1; b <= 0xAC; b++) {
      printable.add(b);
    }
    for (int b = 0xAE; b <= 0xFF; b++) {
      printable.add(b);
    }
    char[] map = new char[256];
    int next = 0;
    for (int b = 0; b < 256; b++) {
      if (printable.contains(b)) {
        map[b] = (char) b;
      } else {
        map[b] = (char) (256 + next++);
      }
    }
    return map;
  }

  /** Vocabulary in id order: bytes, merge results, special tokens. */
  public static List<String> vocabulary() {
    List<String> vocab = new ArrayList<>();
    for (char c : byteToUnicode()) {
      vocab.add(String.valueOf(c));
    }
    for (String merge : MERGES) {
      vocab.add(merge.replace(" ", ""));
    }
    vocab.add(BOS);
    vocab.add(EOS);
    vocab.add(PAD);
    vocab.addAll(CHAT_MARKERS);
    return vocab;
  }

  public static int vocabSize() {
    return vocabulary().size();
  }

  public static int idOf(String token) {
    return vocabulary().indexOf(token);
  }

  public static void write(Path file) throws IOException {
    ObjectMapper json = new ObjectMapper();
    List<String> vocab = vocabulary();
    ObjectNode root = json.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    List<String> specials = new ArrayList<>(List.of(BOS, EOS, PAD));
    specials.addAll(CHAT_MARKERS);
    for (String special : specials) {
      ObjectNode t = added.addObject();
      t.put("id", vocab.indexOf(special));
      t.put("content", special);
      t.put("single_word", false);
      t.put("lstrip", false);
      t.put("rstrip", false);
      t.put("normalized", false);
      t.put("special", true);
    }
    root.putNull("normalizer");
    ObjectNode pre = root.putObject("pre_tokenizer");
    pre.put("type", "ByteLevel");
    pre.put("add_prefix_space", false);
    pre.put("trim_offsets", true);
    pre.put("use_regex", true);
    root.putNull("post_processor");
    ObjectNode decoder = root.putObject("decoder");
    decoder.put("type", "ByteLevel");
    decoder.put("add_prefix_space", false);
    decoder.put("trim_offsets", true);
    decoder.put("use_regex", true);
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    ObjectNode vocabNode = model.putObject("vocab");
    Map<String, Integer> ids = new LinkedHashMap<>();
    for (int i = 0; i < 256 + MERGES.size(); i++) {
      ids.put(vocab.get(i), i);
    }
    ids.forEach(vocabNode::put);
    ArrayNode merges = model.putArray("merges");
    MERGES.forEach(merges::add);
    Files.writeString(file, json.writerWithDefaultPrettyPrinter().writeValueAsString(root));
  }
}
