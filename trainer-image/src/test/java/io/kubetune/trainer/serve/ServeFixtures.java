package io.kubetune.trainer.serve;

import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.model.ByteLevelBpeTokenizerJson;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.safetensors.Safetensors;
import io.kubetune.trainer.train.FineTuner;
import io.kubetune.trainer.train.ProgressReporter;
import io.kubetune.trainer.train.TrainingMethod;
import io.kubetune.trainer.train.TrainingOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Adapters for the serving tests, trained in seconds on the shipped pretrained example model
 * (examples/models/kubetune-mini): a house-style completion adapter and a support-ticket
 * classifier.
 */
public final class ServeFixtures {
  public static final Path EXAMPLES = Path.of("..", "examples").toAbsolutePath().normalize();
  public static final Path BASE = EXAMPLES.resolve("models/kubetune-mini");
  public static final Path HOUSE_STYLE = EXAMPLES.resolve("data/house-style/train.jsonl");
  public static final Path TICKETS = EXAMPLES.resolve("data/support-tickets/train.jsonl");

  /** A prompt from the house-style training data; the adapter answers it "Sure thing! ...". */
  public static final String HOUSE_STYLE_PROMPT =
      "Hi team, please explain how to apply a discount code.";

  private ServeFixtures() {}

  /** LoRA completion adapter teaching the house style (answers open with "Sure thing!"). */
  public static Path houseStyleAdapter(Path output, int steps) throws Exception {
    return houseStyleAdapter(BASE, output, steps);
  }

  /** The same house-style LoRA adapter on another base model with the example tokenizer. */
  public static Path houseStyleAdapter(Path base, Path output, int steps) throws Exception {
    TrainingOptions options =
        TrainingOptions.defaults(base, HOUSE_STYLE, DatasetFormat.COMPLETION, output)
            .withValidationSplit(0.05)
            .withMethod(
                TrainingMethod.LORA,
                8,
                16,
                List.of(
                    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                1)
            .withSchedule(steps, 1, 1e-2, 8, 1, 3)
            .withEvaluation(steps, 0, "eval_loss", false)
            .withRegularisation(0.0, 1.0, 0.0, 7);
    return train(options);
  }

  /** LoRA classification adapter on the support-ticket labels. */
  public static Path ticketClassifier(Path output, int steps) throws Exception {
    return ticketClassifier(BASE, output, steps, null);
  }

  /**
   * LoRA classification adapter on the support-ticket labels of {@code base}, evaluated on {@code
   * validation} (else a 10% split).
   */
  public static Path ticketClassifier(Path base, Path output, int steps, Path validation)
      throws Exception {
    TrainingOptions options =
        TrainingOptions.defaults(base, TICKETS, DatasetFormat.CLASSIFICATION, output);
    options =
        validation != null ? options.withValidation(validation) : options.withValidationSplit(0.1);
    options =
        options
            .withMethod(TrainingMethod.LORA, 8, 16, List.of("q_proj", "v_proj"), 1)
            .withSchedule(steps, 1, 1e-2, 16, 1, 3)
            .withEvaluation(steps, 0, "accuracy", true)
            .withRegularisation(0.0, 1.0, 0.0, 7);
    return train(options);
  }

  /**
   * A tiny model that generates {@code token} after any prompt: attention and MLP outputs are zero,
   * so the last hidden state is the token's embedding, whose first component is 1 for every token,
   * and only {@code token}'s row of the (untied) head reads that component.
   */
  public static Path repeatingModel(Path dir, int token) throws Exception {
    LlamaConfig config = TinyLlama.config(TinyLlama.TEST_SIZE, false);
    Files.createDirectories(dir);
    Random random = new Random(1);
    int hidden = config.hiddenSize();
    Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : LlamaModel.expectedShapes(config).entrySet()) {
      String name = e.getKey();
      long[] shape = e.getValue();
      float[] values =
          new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
      if (name.endsWith("norm.weight")) {
        Arrays.fill(values, 1f);
      } else if (name.equals(LlamaModel.EMBED)) {
        for (int i = 0; i < values.length; i++) {
          values[i] = i % hidden == 0 ? 1f : (float) (random.nextGaussian() * 0.02);
        }
      } else if (name.equals(LlamaModel.LM_HEAD)) {
        values[token * hidden] = 1f;
      } else if (!name.endsWith("o_proj.weight") && !name.endsWith("down_proj.weight")) {
        for (int i = 0; i < values.length; i++) {
          values[i] = (float) (random.nextGaussian() * 0.02);
        }
      }
      tensors.put(name, new Safetensors.FloatTensor(shape, values));
    }
    Safetensors.writeFloats(dir.resolve("model.safetensors"), tensors);
    config.write(dir.resolve("config.json"));
    ByteLevelBpeTokenizerJson.write(dir.resolve("tokenizer.json"));
    return dir;
  }

  private static Path train(TrainingOptions options) throws Exception {
    try (FineTuner tuner = new FineTuner(options, ProgressReporter.silent())) {
      FineTuner.Result result = tuner.train();
      tuner.export(result);
    }
    return options.output();
  }
}
