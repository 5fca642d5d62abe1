package io.kubetune.trainer.cli;

import io.kubetune.trainer.ChildJvm;
import java.nio.file.Path;
import java.util.List;

/** The trainer as its own JVM for tests: the flags of bin/trainer, this test's classpath. */
final class TrainerProcess {
  private TrainerProcess() {}

  /** {@code trainer train --config configFile --termination-log terminationLog}. */
  static List<String> trainCommand(Path configFile, Path terminationLog) {
    return ChildJvm.command(
        List.of(),
        TrainerCli.class,
        List.of(
            "train",
            "--config",
            configFile.toString(),
            "--termination-log",
            terminationLog.toString()));
  }
}
