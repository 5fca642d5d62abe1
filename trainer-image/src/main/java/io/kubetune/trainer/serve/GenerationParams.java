package io.kubetune.trainer.serve;

import java.util.List;

/**
 * Validated sampling settings of a completion or chat request.
 *
 * @param maxTokens null means "up to the context limit" (chat) and is resolved once the prompt is
 *     tokenized
 * @param logprobs null for none, else how many alternatives to report per token (0 = only the
 *     chosen token)
 */
public record GenerationParams(
    String model,
    Integer maxTokens,
    double temperature,
    double topP,
    List<String> stop,
    long seed,
    Integer logprobs,
    boolean stream,
    boolean includeUsageInStream) {}
