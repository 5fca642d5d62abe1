package io.kubetune.trainer.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model's {@code tokenizer.json} through DJL's Hugging Face tokenizers, offline, with the
 * model's {@link TokenizerSettings} (special tokens, stop ids, chat template) read alongside.
 */
public final class TextTokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer tokenizer;
  private TokenizerSettings settings;

  private TextTokenizer(HuggingFaceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  public static TextTokenizer load(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    if (!Files.exists(file)) {
      throw new BadInputException(
          modelDir + " has no tokenizer.json (save the tokenizer with the model)");
    }
    TextTokenizer loaded;
    try {
      loaded =
          new TextTokenizer(
              HuggingFaceTokenizer.builder()
                  .optTokenizerPath(file)
                  .optAddSpecialTokens(false)
                  .optTruncation(false)
                  .optPadding(false)
                  .build());
    } catch (IOException | RuntimeException e) {
      throw new BadInputException("cannot load " + file + ": " + e.getMessage(), e);
    }
    try {
      loaded.settings = TokenizerSettings.read(modelDir, loaded.vocabulary());
    } catch (RuntimeException e) {
      loaded.close();
      throw e;
    }
    return loaded;
  }

  /** The model's special tokens, stop ids and chat template. */
  public TokenizerSettings settings() {
    return settings;
  }

  /**
   * Token ids of the text, nothing added; special-token strings in it map to their ids (as
   * transformers' {@code encode(text, add_special_tokens=False)} and {@code apply_chat_template}).
   */
  public long[] encode(String text) {
    return tokenizer.encode(text, false, false).getIds();
  }

  /** Token ids and each token's character span [start, end) in {@code text}. */
  public Encoded encodeWithOffsets(String text) {
    var encoding = tokenizer.encode(text, false, false);
    var spans = encoding.getCharTokenSpans();
    long[] ids = encoding.getIds();
    int[] starts = new int[ids.length];
    int[] ends = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      starts[i] = spans[i] == null ? -1 : spans[i].getStart();
      ends[i] = spans[i] == null ? -1 : spans[i].getEnd();
    }
    return new Encoded(ids, starts, ends);
  }

  /** Token ids with character offsets; a span is -1 where the tokenizer reports none. */
  public record Encoded(long[] ids, int[] starts, int[] ends) {}

  public String decode(long[] ids) {
    return tokenizer.decode(ids, false);
  }

  /** Id of a token that must exist (e.g. a chat marker), or -1. */
  public long tokenId(String token) {
    long[] ids = tokenizer.encode(token, false, false).getIds();
    return ids.length == 1 ? ids[0] : -1;
  }

  private TokenizerSettings.Vocabulary vocabulary() {
    return new TokenizerSettings.Vocabulary() {
      @Override
      public long tokenId(String token) {
        return TextTokenizer.this.tokenId(token);
      }

      @Override
      public String tokenText(long id) {
        return decode(new long[] {id});
      }

      @Override
      public long[] encodeWithSpecialTokens(String text) {
        return tokenizer.encode(text, true, false).getIds();
      }

      @Override
      public long[] encode(String text) {
        return TextTokenizer.this.encode(text);
      }
    };
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
