package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.kubetune.trainer.data.Example;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.TinyLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Gradient checkpointing (activation recomputation) gives the loss and the gradients of the plain
 * backward pass: LoRA with dropout (the recomputed layers must draw the same masks) and full
 * fine-tuning (the embedding, tied to the head, gets gradients from both ends).
 */
class RecomputationTest {
  @TempDir static Path dir;

  @Test
  void loraWithDropoutGetsTheSameLossAndGradients() throws Exception {
    compare(true);
  }

  @Test
  void fullFineTuningGetsTheSameLossAndGradients() throws Exception {
    compare(false);
  }

  private static void compare(boolean lora) throws Exception {
    Path modelDir = dir.resolve(lora ? "lora" : "full");
    TinyLlama.write(modelDir, TinyLlama.TEST_SIZE, true, 5);
    try (NDManager root = NDManager.newBaseManager();
        LlamaModel model = LlamaModel.load(modelDir, root)) {
      Map<String, NDArray> trained = new LinkedHashMap<>();
      if (lora) {
        LoraAdapter adapter =
            LoraAdapter.create(
                model,
                4,
                8,
                0.1,
                List.of(
                    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                3);
        // Non-zero B, as after some training, so that every adapter array gets a gradient.
        for (NDArray a : adapter.peftTensors().values()) {
          a.addi(root.randomNormal(0, 0.1f, a.getShape(), a.getDataType()));
        }
        model.setAdapter(adapter);
        trained.putAll(adapter.peftTensors());
        model.fuseFrozenProjections(trained::containsKey);
      } else {
        trained.putAll(model.weights());
      }
      trained.values().forEach(a -> a.setRequiresGradient(true));
      TrainingLoss loss = new TrainingLoss(model, null);
      Batch batch = batch(model.config().vocabSize());
      Map<String, float[]> plain = new LinkedHashMap<>();
      Map<String, float[]> recomputed = new LinkedHashMap<>();
      float plainLoss = run(root, loss, batch, trained, false, plain);
      float recomputedLoss = run(root, loss, batch, trained, true, recomputed);
      assertThat(recomputedLoss).isCloseTo(plainLoss, org.assertj.core.data.Offset.offset(1e-5f));
      for (String name : plain.keySet()) {
        float[] a = plain.get(name);
        float[] b = recomputed.get(name);
        float scale = 0;
        float diff = 0;
        for (int i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(a[i]));
          diff = Math.max(diff, Math.abs(a[i] - b[i]));
        }
        assertThat(scale).as(name).isGreaterThan(0f);
        assertThat(diff).as(name).isLessThanOrEqualTo(1e-5f * scale);
      }
    }
  }

  private static float run(
      NDManager root,
      TrainingLoss loss,
      Batch batch,
      Map<String, NDArray> trained,
      boolean recompute,
      Map<String, float[]> gradients) {
    Engine.getInstance().setRandomSeed(42);
    float value;
    try (NDManager scope = root.newSubManager()) {
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        value = loss.accumulateGradients(scope, batch, batch.targetCount(), collector, recompute);
      }
      for (Map.Entry<String, NDArray> e : trained.entrySet()) {
        NDArray g = e.getValue().getGradient();
        gradients.put(e.getKey(), g.toFloatArray());
        g.subi(g);
      }
    }
    return value;
  }

  private static Batch batch(int vocab) {
    Random random = new Random(8);
    List<Example> examples = new ArrayList<>();
    for (int b = 0; b < 3; b++) {
      long[] tokens = new long[10];
      boolean[] trainOn = new boolean[10];
      for (int t = 0; t < tokens.length; t++) {
        tokens[t] = random.nextInt(vocab);
        trainOn[t] = t > 2;
      }
      examples.add(new Example(tokens, trainOn, Example.NO_LABEL));
    }
    return Batch.of(examples, new int[] {0, 1, 2}, 0);
  }
}
