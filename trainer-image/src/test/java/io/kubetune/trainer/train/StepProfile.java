package io.kubetune.trainer.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.kubetune.trainer.data.Example;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Where a training step's time goes (a main, not a test): forward pass, loss, backward pass and
 * optimizer update of LoRA or full fine-tuning on a model folder, timed separately over random
 * token ids. libtorch runs eagerly on the CPU, so each phase's wall time is its own.
 *
 * <p>{@code StepProfile MODEL_DIR lora|full BATCH SEQ STEPS [dropout [recompute]]}: with {@code
 * recompute}, gradient checkpointing (forward, loss and backward are then one figure, under
 * "backward"). Ends with the process's peak resident set. With {@code -Dtrace=FILE}, the last step
 * also runs under libtorch's profiler, which writes a Chrome trace of every op to FILE (to compare
 * op by op with {@code torch.profiler} on the peer). With {@code -Dbf16=true}, the frozen weights
 * are held in bf16 ({@code hyperparameters.precision: bf16}).
 */
public final class StepProfile {
  private StepProfile() {}

  public static void main(String[] args) {
    Path dir = Path.of(args[0]);
    boolean lora = args[1].equals("lora");
    int batchSize = Integer.parseInt(args[2]);
    int seq = Integer.parseInt(args[3]);
    int steps = Integer.parseInt(args[4]);
    double dropout = args.length > 5 ? Double.parseDouble(args[5]) : 0.05;
    boolean recompute = args.length > 6 && args[6].equals("recompute");
    String trace = System.getProperty("trace");
    Engine.getInstance().setRandomSeed(1);
    try (NDManager root = NDManager.newBaseManager();
        LlamaModel model = LlamaModel.load(dir, root)) {
      Map<String, NDArray> trainable = new LinkedHashMap<>();
      if (lora) {
        LoraAdapter adapter =
            LoraAdapter.create(
                model,
                8,
                16,
                dropout,
                List.of(
                    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                1);
        model.setAdapter(adapter);
        // B = 0 makes the adapter's A gradients zero; a nonzero B is the steady state.
        adapter.peftTensors().forEach((n, t) -> trainable.put(n, t));
      } else {
        trainable.putAll(model.weights());
      }
      trainable.values().forEach(a -> a.setRequiresGradient(true));
      // As the trainer does (TrainingSetup): frozen weights in bf16 with -Dbf16=true, then the
      // frozen q/k/v and gate/up weights fused.
      if (Boolean.getBoolean("bf16")) {
        model.convertFrozenToBf16(trainable::containsKey);
      }
      model.fuseFrozenProjections(trainable::containsKey);
      Set<String> noDecay = new HashSet<>();
      trainable.keySet().stream().filter(AdamW::exemptFromDecay).forEach(noDecay::add);
      TrainingLoss loss = new TrainingLoss(model, null);
      LogitKernels logitKernels = LogitKernels.compile(root, model.lmHeadIsBf16());
      Random random = new Random(2);
      int vocab = model.config().vocabSize();
      double[] totals = new double[4];
      var threads = java.lang.management.ManagementFactory.getThreadMXBean();
      var os =
          (com.sun.management.OperatingSystemMXBean)
              java.lang.management.ManagementFactory.getOperatingSystemMXBean();
      double cpuTotal = 0;
      double processTotal = 0;
      try (AdamW optimizer = new AdamW(root, 0.0, noDecay)) {
        for (int step = 0; step < steps; step++) {
          List<Example> examples = new ArrayList<>();
          int[] indices = new int[batchSize];
          for (int b = 0; b < batchSize; b++) {
            long[] tokens = new long[seq];
            boolean[] trainOn = new boolean[seq];
            for (int t = 0; t < seq; t++) {
              tokens[t] = random.nextInt(vocab);
              trainOn[t] = true;
            }
            examples.add(new Example(tokens, trainOn, Example.NO_LABEL));
            indices[b] = b;
          }
          Batch batch = Batch.of(examples, indices, 0);
          boolean traced = trace != null && step == steps - 1;
          if (traced) {
            // Shapes always; memory only with -DtraceMemory=true: recording it slows large
            // allocations enough to distort the step (seen at 135M).
            ai.djl.pytorch.jni.JniUtils.startProfile(
                false, true, Boolean.getBoolean("traceMemory"));
          }
          double[] t = new double[4];
          long cpu0 = threads.getCurrentThreadCpuTime();
          long process0 = os.getProcessCpuTime();
          try (NDManager scope = root.newSubManager()) {
            long t0 = System.nanoTime();
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
              if (recompute) {
                loss.accumulateGradients(scope, batch, batch.targetCount(), collector, true);
                t[2] = (System.nanoTime() - t0) / 1e6;
              } else {
                NDArray hidden = model.hiddenStates(batch.tokens(scope), null, true);
                long t1 = System.nanoTime();
                NDArray value =
                    ChunkedCrossEntropy.summedNll(
                            hidden,
                            model.lmHead(),
                            null,
                            batch.targets,
                            batch.targetWeights,
                            scope,
                            true,
                            logitKernels)
                        .div(LlamaModel.scalar(scope, batch.targetCount()));
                value.getFloat();
                long t2 = System.nanoTime();
                collector.backward(value);
                long t3 = System.nanoTime();
                t[0] = (t1 - t0) / 1e6;
                t[1] = (t2 - t1) / 1e6;
                t[2] = (t3 - t2) / 1e6;
              }
            }
            long t4 = System.nanoTime();
            // The trainer's own update, without clipping.
            TrainingLoop.applyUpdate(trainable, optimizer, 1e-4, 0, scope);
            t[3] = (System.nanoTime() - t4) / 1e6;
          }
          if (traced) {
            ai.djl.pytorch.jni.JniUtils.stopProfile(trace);
          }
          double cpu = (threads.getCurrentThreadCpuTime() - cpu0) / 1e6;
          double process = (os.getProcessCpuTime() - process0) / 1e6;
          if (step >= 1) {
            cpuTotal += cpu;
            processTotal += process;
          }
          System.out.printf(
              Locale.ROOT,
              "step %d: forward %.0f ms, loss %.0f ms, backward %.0f ms, optimizer %.0f ms,"
                  + " total %.0f ms%n",
              step,
              t[0],
              t[1],
              t[2],
              t[3],
              t[0] + t[1] + t[2] + t[3]);
          if (step >= 1) {
            for (int i = 0; i < 4; i++) {
              totals[i] += t[i];
            }
          }
        }
      }
      int timed = steps - 1;
      double sum = totals[0] + totals[1] + totals[2] + totals[3];
      System.out.printf(
          Locale.ROOT,
          "%s mean of %d: forward %.0f, loss %.0f, backward %.0f, optimizer %.0f, step %.0f ms;"
              + " %.0f tokens/s; main-thread CPU %.0f ms/step, process CPU %.0f ms/step%n",
          args[1],
          timed,
          totals[0] / timed,
          totals[1] / timed,
          totals[2] / timed,
          totals[3] / timed,
          sum / timed,
          batchSize * seq * timed / (sum / 1000),
          cpuTotal / timed,
          processTotal / timed);
      System.out.printf(
          Locale.ROOT,
          "%s%s peak RSS %d MiB%n",
          args[1],
          recompute ? " (gradient checkpointing)" : "",
          peakRssMiB());
    }
  }

  /** The process's peak resident set (VmHWM), MiB. */
  private static long peakRssMiB() {
    try {
      for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
        }
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return -1;
  }
}
