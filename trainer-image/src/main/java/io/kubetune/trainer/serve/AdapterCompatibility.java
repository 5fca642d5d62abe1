package io.kubetune.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.PeftLoraConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checks, before the server reports ready, that a PEFT LoRA adapter fits the base model it is
 * served on: that it uses only the PEFT features the project computes ({@link PeftLoraConfig}), and
 * that every tensor has the shape the base's sizes and the module's rank imply. A mismatch is
 * reported at startup with the numbers on both sides, instead of a shape error on the first
 * request. Pure.
 */
public final class AdapterCompatibility {
  private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.");

  private AdapterCompatibility() {}

  /** Every problem found; empty when the adapter can be served on this base. */
  public static List<String> problems(
      LlamaConfig base, JsonNode adapterConfig, Map<String, long[]> tensorShapes) {
    List<String> problems = new ArrayList<>();
    PeftLoraConfig config;
    try {
      config = PeftLoraConfig.parse(adapterConfig, "adapter_config.json");
    } catch (BadInputException e) {
      problems.add(e.getMessage());
      return problems;
    }
    List<String> targets = config.targetModules();
    for (String name : tensorShapes.keySet()) {
      Matcher m = LAYER.matcher(name);
      if (m.find() && Integer.parseInt(m.group(1)) >= base.numHiddenLayers()) {
        problems.add(
            "tensor "
                + name
                + " adapts layer "
                + m.group(1)
                + " but the base model has "
                + base.numHiddenLayers()
                + " layers: the adapter was trained on a different base");
        return problems;
      }
    }
    Map<String, long[]> baseShapes = LlamaModel.expectedShapes(base);
    for (int layer = 0; layer < base.numHiddenLayers(); layer++) {
      for (String module : targets) {
        String moduleName = LlamaModel.moduleName(layer, module);
        long[] weight = baseShapes.get(moduleName + ".weight");
        if (weight == null) {
          continue;
        }
        String prefix = LoraAdapter.PEFT_PREFIX + moduleName;
        int rank = config.rank(moduleName);
        expect(problems, tensorShapes, prefix + ".lora_A.weight", new long[] {rank, weight[1]});
        expect(problems, tensorShapes, prefix + ".lora_B.weight", new long[] {weight[0], rank});
        if (problems.size() >= 3) {
          problems.add("(further shape checks skipped)");
          return problems;
        }
      }
    }
    return problems;
  }

  /** The classification head {@code score.weight} must be (labels, hidden). */
  public static List<String> headProblems(LlamaConfig base, long[] headShape, int labelCount) {
    long[] expected = {labelCount, base.hiddenSize()};
    if (headShape == null) {
      return List.of(
          "a classification adapter needs "
              + LoraAdapter.PEFT_PREFIX
              + LlamaModel.SCORE
              + " (the classifier head saved with modules_to_save)");
    }
    if (!Arrays.equals(headShape, expected)) {
      return List.of(
          "classifier head has shape "
              + Arrays.toString(headShape)
              + " but "
              + labelCount
              + " labels on a base of hidden size "
              + base.hiddenSize()
              + " need "
              + Arrays.toString(expected));
    }
    return List.of();
  }

  private static void expect(
      List<String> problems, Map<String, long[]> shapes, String name, long[] expected) {
    long[] actual = shapes.get(name);
    if (actual == null) {
      problems.add("adapter_model.safetensors lacks tensor " + name);
    } else if (!Arrays.equals(actual, expected)) {
      problems.add(
          "tensor "
              + name
              + " has shape "
              + Arrays.toString(actual)
              + " but this base model with the declared rank needs "
              + Arrays.toString(expected)
              + ": the adapter was trained on a different base");
    }
  }
}
