package io.kubetune.trainer.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The model's {@code tokenizer.json} through DJL's Hugging Face tokenizers, offline. */
public final class TextTokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer tokenizer;

  private TextTokenizer(HuggingFaceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  public static TextTokenizer load(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    if (!Files.exists(file)) {
      throw new BadInputException(
          modelDir + " has no tokenizer.json (save the tokenizer with the model)");
    }
    try {
      return new TextTokenizer(
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(file)
              .optAddSpecialTokens(false)
              .optTruncation(false)
              .optPadding(false)
              .build());
    } catch (IOException | RuntimeException e) {
      throw new BadInputException("cannot load " + file + ": " + e.getMessage(), e);
    }
  }

  /** Token ids of the text; special-token strings in it map to their ids. */
  public long[] encode(String text) {
    return tokenizer.encode(text, false, false).getIds();
  }

  public String decode(long[] ids) {
    return tokenizer.decode(ids, false);
  }

  /** Id of a token that must exist (e.g. a chat marker), or -1. */
  public long tokenId(String token) {
    long[] ids = tokenizer.encode(token, false, false).getIds();
    return ids.length == 1 ? ids[0] : -1;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
