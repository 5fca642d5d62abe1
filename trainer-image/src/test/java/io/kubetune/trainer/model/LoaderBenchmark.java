package io.kubetune.trainer.model;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.ChildJvm;
import io.kubetune.trainer.Testbed;
import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Host memory and time of {@link LlamaModel#load} on the full Qwen2.5-0.5B shape (24 layers, vocab
 * 151,936, tied; random bf16 weights written by transformers 5 {@code save_pretrained}). The load
 * runs in a child JVM with the launcher's own {@code -XX:MaxDirectMemorySize} (read from
 * bin/trainer), which reports its resident set before loading (JVM and libtorch started) and its
 * peak ({@code VmHWM} of /proc/self/status) after. Not a test: run with
 *
 * <pre>
 * java -cp target/test-classes:target/classes:../operator/api/target/classes:$(cat target/test-classpath.txt) \
 *   -Dai.djl.offline=true -DDJL_CACHE_DIR=target/djl-cache -DENGINE_CACHE_DIR=target/djl-cache \
 *   io.kubetune.trainer.model.LoaderBenchmark [out.json] [rounds] [model-dir]
 * </pre>
 *
 * Without a model directory the checkpoint is generated into a temporary one (needs the test bed)
 * and deleted afterwards. Each round is a fresh child JVM; the page cache is warm after the first.
 */
public final class LoaderBenchmark {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private LoaderBenchmark() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 2 && args[0].equals("--child")) {
      child(Path.of(args[1]));
      return;
    }
    Path out = Path.of(args.length > 0 ? args[0] : "target/loader-benchmark.json");
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    Path generated = null;
    Path model;
    if (args.length > 2) {
      model = Path.of(args[2]);
    } else {
      generated = Files.createTempDirectory("loader-bench");
      model = generated.resolve("qwen2.5-0.5b");
      long started = System.nanoTime();
      Testbed.run(
              "hf_checkpoints.py",
              List.of(
                  "make",
                  JSON.writeValueAsString(Map.of("qwen2.5-0.5b", qwen25())),
                  generated.toString()),
              1800)
          .orThrow();
      System.out.printf("generated in %.1f s%n", (System.nanoTime() - started) / 1e9);
    }
    try {
      ObjectNode result = JSON.createObjectNode();
      LlamaConfig config = LlamaConfig.read(model.resolve("config.json"));
      result.put(
          "model", "Qwen2.5-0.5B shape (random bf16 weights, transformers 5.24 save_pretrained)");
      result.put("parameters", config.parameterCount());
      result.put("fp32Bytes", 4 * config.parameterCount());
      long largestShard = 0;
      long checkpointBytes = 0;
      int shards = 0;
      try (Stream<Path> files = Files.list(model)) {
        for (Path f : files.filter(f -> f.toString().endsWith(".safetensors")).toList()) {
          largestShard = Math.max(largestShard, Files.size(f));
          checkpointBytes += Files.size(f);
          shards++;
        }
      }
      result.put("shards", shards);
      result.put("checkpointBytes", checkpointBytes);
      result.put("largestShardBytes", largestShard);
      String flag = launcherDirectMemoryFlag();
      result.put("jvmFlag", flag);
      List<JsonNode> runs = new ArrayList<>();
      for (int r = 0; r < rounds; r++) {
        runs.add(runChild(model, flag));
        System.out.println("round " + r + ": " + runs.get(r));
      }
      result.set("rounds", JSON.valueToTree(runs));
      JsonNode last = runs.get(runs.size() - 1);
      long peak = runs.stream().mapToLong(n -> n.get("peakRssBytes").asLong()).max().orElseThrow();
      long growth =
          runs.stream()
              .mapToLong(n -> n.get("peakRssBytes").asLong() - n.get("baselineRssBytes").asLong())
              .max()
              .orElseThrow();
      result.put("maxPeakRssBytes", peak);
      result.put("maxLoadRssGrowthBytes", growth);
      result.put("loadRssGrowthOverFp32", round((double) growth / (4 * config.parameterCount())));
      result.put(
          "loadSecondsMedian",
          runs.stream()
              .mapToDouble(n -> n.get("loadSeconds").asDouble())
              .sorted()
              .toArray()[runs.size() / 2]);
      result.put("firstRoundLoadSeconds", runs.get(0).get("loadSeconds").asDouble());
      result.put("lastRoundLoadSeconds", last.get("loadSeconds").asDouble());
      Files.createDirectories(out.toAbsolutePath().getParent());
      JSON.writeValue(out.toFile(), result);
      System.out.println(JSON.writeValueAsString(result));
    } finally {
      if (generated != null) {
        try (Stream<Path> walk = Files.walk(generated)) {
          for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
            Files.delete(p);
          }
        }
      }
    }
  }

  private static Map<String, Object> qwen25() {
    return Map.of(
        "model_type",
        "qwen2",
        "seed",
        1,
        "max_shard_size",
        "5GB",
        "ids",
        List.of(),
        "config",
        Map.ofEntries(
            Map.entry("hidden_size", 896),
            Map.entry("num_attention_heads", 14),
            Map.entry("num_key_value_heads", 2),
            Map.entry("intermediate_size", 4864),
            Map.entry("vocab_size", 151936),
            Map.entry("num_hidden_layers", 24),
            Map.entry("tie_word_embeddings", true),
            Map.entry("max_position_embeddings", 32768),
            Map.entry("bos_token_id", 151643),
            Map.entry("eos_token_id", 151643),
            Map.entry("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e6))));
  }

  /** The {@code -XX:MaxDirectMemorySize=...} the shipped launcher passes. */
  static String launcherDirectMemoryFlag() throws IOException {
    String launcher =
        Files.readString(
            Path.of(System.getProperty("kubetune.trainer.moduleDir", ".")).resolve("bin/trainer"));
    Matcher flag = Pattern.compile("-XX:MaxDirectMemorySize=\\S+").matcher(launcher);
    if (!flag.find()) {
      throw new IllegalStateException("bin/trainer sets no -XX:MaxDirectMemorySize");
    }
    return flag.group();
  }

  private static JsonNode runChild(Path model, String flag) throws Exception {
    List<String> command =
        ChildJvm.command(
            List.of(flag), LoaderBenchmark.class, List.of("--child", model.toString()));
    Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!child.waitFor(600, TimeUnit.SECONDS) || child.exitValue() != 0) {
      throw new IllegalStateException("load failed:\n" + output);
    }
    String last = output.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow();
    return JSON.readTree(last);
  }

  private static void child(Path model) throws IOException {
    try (NDManager manager = NDManager.newBaseManager()) {
      manager.zeros(new ai.djl.ndarray.types.Shape(1)).close(); // start libtorch first
      long baseline = status("VmRSS");
      long started = System.nanoTime();
      try (LlamaModel loaded = LlamaModel.load(model, manager)) {
        double seconds = (System.nanoTime() - started) / 1e9;
        ObjectNode line = new ObjectMapper().createObjectNode();
        line.put("loadSeconds", round(seconds));
        // Other processes' load, for reading the time: the machine may be shared.
        line.put("loadAverage", Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        line.put("baselineRssBytes", baseline);
        line.put("peakRssBytes", status("VmHWM"));
        line.put("rssAfterLoadBytes", status("VmRSS"));
        line.put("parameters", loaded.loadReport().parameters());
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
          if (pool.getName().equals("direct")) {
            line.put("directBufferBytesAfterLoad", pool.getMemoryUsed());
          }
        }
        System.out.println(new ObjectMapper().writeValueAsString(line));
      }
    }
  }

  /** A field of /proc/self/status in bytes (Linux). */
  private static long status(String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith(field + ":")) {
        return Long.parseLong(line.replaceAll("\\D+", "")) * 1024;
      }
    }
    throw new IllegalStateException("/proc/self/status has no " + field);
  }

  private static double round(double v) {
    return Math.round(v * 1000) / 1000.0;
  }
}
