package io.kubetune.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.trainer.model.LlamaConfig;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checks, before the server reports ready, that a PEFT LoRA adapter fits the base model it is
 * served on: its type and rank, that every target module exists in this architecture, and that
 * every tensor has the shape the base's sizes imply. A mismatch is reported at startup with the
 * numbers on both sides, instead of a shape error on the first request. Pure.
 */
public final class AdapterCompatibility {
  private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.");

  private AdapterCompatibility() {}

  /** Every problem found; empty when the adapter can be served on this base. */
  public static List<String> problems(
      LlamaConfig base, JsonNode adapterConfig, Map<String, long[]> tensorShapes) {
    List<String> problems = new ArrayList<>();
    if (!"LORA".equals(adapterConfig.path("peft_type").asText())) {
      problems.add(
          "adapter_config.json: peft_type is '"
              + adapterConfig.path("peft_type").asText()
              + "', only LORA adapters are served");
      return problems;
    }
    int rank = adapterConfig.path("r").asInt(0);
    if (rank <= 0) {
      problems.add("adapter_config.json: r (the LoRA rank) must be a positive integer");
      return problems;
    }
    List<String> targets = new ArrayList<>();
    adapterConfig.path("target_modules").forEach(n -> targets.add(n.asText()));
    if (targets.isEmpty()) {
      problems.add("adapter_config.json: target_modules must list the adapted modules");
    }
    for (String t : targets) {
      if (!LlamaModel.ATTENTION_MODULES.contains(t) && !LlamaModel.MLP_MODULES.contains(t)) {
        problems.add(
            "adapter_config.json: target module '"
                + t
                + "' does not exist in a Llama-architecture base; expected q/k/v/o_proj or"
                + " gate/up/down_proj");
      }
    }
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
