package io.kubetune.trainer.cli;

import java.nio.file.Path;
import java.util.List;

/** The trainer as its own JVM for tests: the flags of bin/trainer, this test's classpath. */
final class TrainerProcess {
  private TrainerProcess() {}

  /** {@code trainer train --config configFile --termination-log terminationLog}. */
  static List<String> trainCommand(Path configFile, Path terminationLog) {
    String java = ProcessHandle.current().info().command().orElse("java");
    return List.of(
        java,
        "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-DDJL_CACHE_DIR=" + System.getProperty("DJL_CACHE_DIR", ""),
        "-DENGINE_CACHE_DIR=" + System.getProperty("DJL_CACHE_DIR", ""),
        "-cp",
        System.getProperty("java.class.path"),
        TrainerCli.class.getName(),
        "train",
        "--config",
        configFile.toString(),
        "--termination-log",
        terminationLog.toString());
  }
}
