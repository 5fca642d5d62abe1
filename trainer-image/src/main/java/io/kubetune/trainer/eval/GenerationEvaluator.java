package io.kubetune.trainer.eval;

import io.kubetune.trainer.data.JsonlDataset.GenerationCase;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.serve.GenerationParams;
import io.kubetune.trainer.serve.Inference;
import java.util.ArrayList;
import java.util.List;

/**
 * Greedy generation on held-out prompts, scored with {@link GenerationMetrics}. Prompts are built
 * and answers stopped exactly as the server does ({@link Inference}: BOS, the chat template with
 * the generation prompt, every EOS id of the model and the end of the assistant turn), so the
 * figures describe what users of the served model will see. The first {@code maxExamples} cases are
 * used, in file order, so every evaluation of a run answers the same prompts.
 */
public final class GenerationEvaluator {
  private final Inference inference;
  private final List<GenerationCase> cases;
  private final List<long[]> prompts = new ArrayList<>();
  private final int maxNewTokens;

  public GenerationEvaluator(
      TextTokenizer tokenizer, List<GenerationCase> cases, int maxExamples, int maxNewTokens) {
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens must be at least 1, got " + maxNewTokens);
    }
    this.inference = new Inference(tokenizer);
    this.cases = List.copyOf(cases.subList(0, Math.min(Math.max(0, maxExamples), cases.size())));
    this.maxNewTokens = maxNewTokens;
    for (GenerationCase c : this.cases) {
      prompts.add(
          c.conversation() != null
              ? inference.chatPrompt(c.conversation())
              : inference.completionPrompt(c.prompt()));
    }
  }

  /** Whether there is anything to evaluate (maxExamples 0 or no held-out records: no). */
  public boolean isEmpty() {
    return cases.isEmpty();
  }

  public int size() {
    return cases.size();
  }

  /** The greedy answers of {@code model} (base, or base + its adapter), in case order. */
  public List<String> answers(LlamaModel model) {
    int context = model.config().maxPositionEmbeddings();
    List<String> answers = new ArrayList<>(prompts.size());
    for (long[] prompt : prompts) {
      int room = Math.min(maxNewTokens, context - prompt.length);
      if (room <= 0) {
        answers.add(""); // the prompt fills the context: no answer fits
        continue;
      }
      GenerationParams greedy =
          new GenerationParams(null, room, 0.0, 1.0, List.of(), 0L, null, false, false);
      answers.add(inference.generate(model, prompt, greedy, null, () -> false).text());
    }
    return answers;
  }

  /** The references, in case order. */
  public List<String> references() {
    return cases.stream().map(GenerationCase::reference).toList();
  }

  /** Answers {@code model} on every case and scores the answers. */
  public GenerationMetrics evaluate(LlamaModel model) {
    if (cases.isEmpty()) {
      throw new IllegalStateException("no held-out prompts to generate for");
    }
    return GenerationMetrics.of(answers(model), references());
  }
}
