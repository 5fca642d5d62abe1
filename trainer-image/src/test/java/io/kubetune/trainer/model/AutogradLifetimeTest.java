package io.kubetune.trainer.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Regression test for a use-after-free: scalars that enter the autograd graph must stay alive until
 * backward. Garbage collection and fresh direct buffers between forward and backward must not
 * change the gradients.
 */
class AutogradLifetimeTest {
  @TempDir Path dir;

  @Test
  void gradientsDoNotDependOnGarbageCollectionBetweenForwardAndBackward() throws Exception {
    TinyLlama.write(dir, TinyLlama.TEST_SIZE, true, 5);
    try (NDManager root = NDManager.newBaseManager()) {
      LlamaModel model = LlamaModel.load(dir, root);
      LoraAdapter adapter = LoraAdapter.create(model, 4, 8, 0.0, List.of("q_proj", "v_proj"), 1);
      model.setAdapter(adapter);
      String name = "model.layers.0.self_attn.q_proj";
      adapter
          .b(name)
          .addi(
              root.randomNormal(
                  0, 0.1f, adapter.b(name).getShape(), adapter.b(name).getDataType()));
      adapter.peftTensors().values().forEach(a -> a.setRequiresGradient(true));

      float[] quiet = gradientOfB(model, root, name, false);
      float[] churned = gradientOfB(model, root, name, true);

      assertThat(churned).containsExactly(quiet);
    }
  }

  private static float[] gradientOfB(LlamaModel model, NDManager root, String name, boolean churn) {
    NDArray b = model.adapter().b(name);
    try (NDManager step = root.newSubManager()) {
      step.tempAttachAll(b);
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray ids = LlamaModel.ids(step, new long[][] {{1, 5, 9, 100, 3, 7, 42, 8}});
        NDArray loss = model.logits(model.hiddenStates(ids, null, true)).square().sum();
        if (churn) {
          churnDirectMemory();
        }
        collector.backward(loss);
      }
      NDArray grad = b.getGradient();
      float[] values = grad.toFloatArray();
      grad.subi(grad);
      return values;
    }
  }

  /** Frees unreachable direct buffers and reuses their memory with NaN bit patterns. */
  private static void churnDirectMemory() {
    for (int round = 0; round < 3; round++) {
      System.gc();
      List<ByteBuffer> garbage = new ArrayList<>();
      for (int i = 0; i < 2000; i++) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(4);
        buffer.putInt(0, 0x7FC00000);
        garbage.add(buffer);
      }
      garbage.clear();
    }
  }
}
