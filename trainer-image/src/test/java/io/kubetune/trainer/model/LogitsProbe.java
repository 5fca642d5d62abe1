package io.kubetune.trainer.model;

import ai.djl.ndarray.NDManager;
import io.kubetune.api.trainer.TrainerEvent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Loads a checkpoint with {@link LlamaModel#load} and writes the logits of a token sequence as raw
 * little-endian float32 (seq x vocab); prints the load report as JSON. A {@code main} so tests can
 * run a load in a child JVM with the launcher's memory flags:
 *
 * <pre>LogitsProbe MODEL_DIR 1,2,3 OUT.f32</pre>
 */
public final class LogitsProbe {
  private LogitsProbe() {}

  public static void main(String[] args) throws IOException {
    Path model = Path.of(args[0]);
    long[] ids = Arrays.stream(args[1].split(",")).mapToLong(Long::parseLong).toArray();
    try (NDManager manager = NDManager.newBaseManager();
        LlamaModel loaded = LlamaModel.load(model, manager)) {
      write(logits(loaded, ids), Path.of(args[2]));
      System.out.println(TrainerEvent.toLine(loaded.loadReport().event(loaded.config())));
    }
  }

  /** Logits (seq x vocab, row-major) of {@code ids} as one sequence. */
  public static float[] logits(LlamaModel model, long[] ids) {
    try (NDManager step = model.manager().newSubManager()) {
      return model
          .logits(model.hiddenStates(LlamaModel.ids(step, new long[][] {ids}), null, false))
          .toFloatArray();
    }
  }

  public static void write(float[] values, Path file) throws IOException {
    ByteBuffer bytes = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    Files.write(file, bytes.array());
  }

  public static float[] read(Path file) throws IOException {
    ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    float[] values = new float[bytes.remaining() / 4];
    bytes.asFloatBuffer().get(values);
    return values;
  }
}
