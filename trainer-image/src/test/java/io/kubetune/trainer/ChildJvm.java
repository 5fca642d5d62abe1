package io.kubetune.trainer;

import java.util.ArrayList;
import java.util.List;

/**
 * A command that runs a main class of the trainer in a JVM of its own, with this test JVM's
 * classpath and the offline DJL settings of bin/trainer: for code that may abort the JVM, or that
 * must run under the launcher's own memory flags.
 */
public final class ChildJvm {
  private ChildJvm() {}

  /**
   * @param jvmFlags extra flags before the class (e.g. {@code -XX:MaxDirectMemorySize=512m})
   * @param main the class whose {@code main} runs
   * @param args its arguments
   */
  public static List<String> command(List<String> jvmFlags, Class<?> main, List<String> args) {
    String djlCache = System.getProperty("DJL_CACHE_DIR", "");
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    command.addAll(jvmFlags);
    command.addAll(
        List.of(
            "-Dai.djl.offline=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-DDJL_CACHE_DIR=" + djlCache,
            "-DENGINE_CACHE_DIR=" + djlCache,
            "-cp",
            System.getProperty("java.class.path"),
            main.getName()));
    command.addAll(args);
    return command;
  }
}
