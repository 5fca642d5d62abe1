package io.kubetune.trainer.cli;

import io.kubetune.trainer.Testbed;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code trainer benchmark} side by side with transformers + PEFT from the test bed (a main, not a
 * test: figures are never asserted). Run from trainer-image after a test-compile; every argument is
 * passed on, e.g. {@code --model DIR --output target/peer-benchmark.json --batch-size 4}:
 *
 * <pre>
 * java -cp target/test-classes:target/classes:... io.kubetune.trainer.cli.PeerBenchmark ARGS
 * </pre>
 */
public final class PeerBenchmark {
  private PeerBenchmark() {}

  public static void main(String[] args) {
    TrainerCli.useContainerCpuLimit();
    List<String> all =
        new ArrayList<>(
            List.of(
                "benchmark",
                "--peer-python",
                Testbed.python().toString(),
                "--peer-script",
                Testbed.script("peft_benchmark.py").toString()));
    all.addAll(List.of(args));
    System.exit(TrainerCli.run(all.toArray(String[]::new), System.out, System.err));
  }
}
