package io.kubetune.trainer.cli;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.InvalidFieldException;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.StorageFullException;
import io.kubetune.trainer.data.ChatTemplate;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.model.Generator;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.train.EngineThreads;
import io.kubetune.trainer.train.LossNotFiniteException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code trainer} command line. Exit codes follow {@link TrainerExitCodes} (docs/trainer.md):
 * errors print one line to stderr; JSON results and progress go to stdout.
 */
@Command(
    name = "trainer",
    mixinStandardHelpOptions = true,
    description =
        "KubeTune trainer: fine-tune Llama-architecture models (LoRA, full, frozen layers).",
    subcommands = {
      TrainCommand.class,
      TrainerCli.InitTinyModel.class,
      TrainerCli.Generate.class,
      TrainerCli.LogProbs.class,
      Serve.class,
      Benchmark.class,
      ConvertGguf.class
    })
public final class TrainerCli {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) {
    useContainerCpuLimit();
    System.exit(run(args, System.out, System.err));
  }

  /**
   * libtorch sizes its thread pool from the node's cores, ignoring the container's CPU quota; the
   * JVM's processor count honours the quota, so hand that to the engine unless the user chose
   * (OMP_NUM_THREADS or -Dai.djl.pytorch.num_threads).
   */
  static void useContainerCpuLimit() {
    if (System.getProperty("ai.djl.pytorch.num_threads") == null
        && System.getenv("OMP_NUM_THREADS") == null) {
      String threads = String.valueOf(Runtime.getRuntime().availableProcessors());
      System.setProperty("ai.djl.pytorch.num_threads", threads);
      System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
      System.setProperty(EngineThreads.AUTO_PROPERTY, "true");
    }
  }

  /** Runs a command and returns its exit code (tests call this instead of main). */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    CommandLine cli = new CommandLine(new TrainerCli());
    cli.setOut(new java.io.PrintWriter(out, true, StandardCharsets.UTF_8));
    cli.setErr(new java.io.PrintWriter(err, true, StandardCharsets.UTF_8));
    cli.setExecutionExceptionHandler(
        (e, commandLine, parseResult) -> {
          int code = exitCode(e);
          err.println("error: " + oneLine(e));
          if (commandLine.getCommand() instanceof TrainCommand train) {
            train.writeTermination(code, e);
          }
          return code;
        });
    // Usage errors are bad input too.
    cli.setParameterExceptionHandler(
        (e, args2) -> {
          err.println("error: " + e.getMessage());
          e.getCommandLine().usage(err);
          return TrainerExitCodes.BAD_INPUT;
        });
    for (CommandLine sub : cli.getSubcommands().values()) {
      sub.setOut(cli.getOut());
      sub.setErr(cli.getErr());
    }
    Context.out = out;
    return cli.execute(args);
  }

  static int exitCode(Throwable e) {
    if (e instanceof BadInputException || e instanceof InvalidFieldException) {
      return TrainerExitCodes.BAD_INPUT;
    }
    if (e instanceof LossNotFiniteException) {
      return TrainerExitCodes.LOSS_NOT_FINITE;
    }
    if (e instanceof StorageFullException || StorageFullException.noSpaceIn(e)) {
      return TrainerExitCodes.STORAGE_FULL;
    }
    return TrainerExitCodes.UNEXPECTED_ERROR;
  }

  static String oneLine(Throwable e) {
    String message = e.getMessage() == null ? e.getClass().getName() : e.getMessage();
    if (!(e instanceof BadInputException)
        && !(e instanceof InvalidFieldException)
        && !(e instanceof LossNotFiniteException)
        && !(e instanceof StorageFullException)) {
      message = e.getClass().getSimpleName() + ": " + message;
    }
    return message.replace('\n', ' ');
  }

  /** Where subcommands print results (set per run so tests can capture it). */
  static final class Context {
    static PrintStream out = System.out;
  }

  @Command(
      name = "init-tiny-model",
      description =
          "Write a seeded random-weight Llama or Qwen2 model (config.json, model.safetensors,"
              + " tokenizer.json) with the tiny tokenizer, small by default or at a real model's"
              + " shape.")
  static final class InitTinyModel implements Callable<Integer> {
    @Option(names = "--output", required = true)
    Path output;

    @Option(names = "--seed", defaultValue = "42")
    long seed;

    @Option(names = "--hidden", defaultValue = "64")
    int hidden;

    @Option(names = "--layers", defaultValue = "2")
    int layers;

    @Option(names = "--heads", defaultValue = "4")
    int heads;

    @Option(names = "--kv-heads", defaultValue = "2")
    int kvHeads;

    @Option(names = "--intermediate", defaultValue = "128")
    int intermediate;

    // True by default, so picocli wants the negative name: with "--tie-embeddings" as the name,
    // giving that flag set false and "--no-tie-embeddings" set true.
    @Option(
        names = "--no-tie-embeddings",
        defaultValue = "true",
        negatable = true,
        description = "Share the embedding with the LM head (default) or not.")
    boolean tie;

    @Option(
        names = "--vocab-size",
        description =
            "Rows of the embedding and the LM head (default: the tokenizer's vocabulary). A larger"
                + " value gives a real model's vocabulary-wide logits; the tokenizer stays the"
                + " tiny one.")
    Integer vocabSize;

    @Option(
        names = "--architecture",
        defaultValue = "llama",
        description = "model_type to write: llama, or qwen2 (biases on q/k/v_proj).")
    String architecture;

    @Override
    public Integer call() throws IOException {
      if (!TinyLlama.MODEL_TYPES.contains(architecture)) {
        throw new BadInputException(
            "--architecture must be one of "
                + String.join(", ", TinyLlama.MODEL_TYPES)
                + ", got "
                + architecture);
      }
      int vocab = vocabSize == null ? TinyLlama.minVocabSize() : vocabSize;
      if (vocab < TinyLlama.minVocabSize()) {
        throw new BadInputException(
            "--vocab-size must be at least "
                + TinyLlama.minVocabSize()
                + " (the tokenizer's vocabulary), got "
                + vocab);
      }
      var config =
          TinyLlama.config(
              new TinyLlama.Size(hidden, layers, heads, kvHeads, intermediate),
              tie,
              architecture,
              vocab);
      TinyLlama.write(output, config, seed);
      Context.out.println(
          JSON.writeValueAsString(
              Map.of("output", output.toString(), "parameters", config.parameterCount())));
      return TrainerExitCodes.SUCCESS;
    }
  }

  /** Options shared by the inference commands. */
  static class ModelOptions {
    @Option(names = "--model", required = true, description = "Base model directory.")
    Path model;

    @Option(names = "--adapter", description = "PEFT LoRA adapter directory.")
    Path adapter;

    @Option(names = "--prompt", required = true)
    String prompt;

    @Option(
        names = "--chat",
        description = "Wrap the prompt as a user message in the chat template.")
    boolean chat;

    long[] promptIds(TextTokenizer tokenizer, LlamaModel model) {
      ChatTemplate modelTemplate = ChatTemplate.of(tokenizer.settings());
      if (chat && modelTemplate != null) {
        // The model's own template writes BOS itself where the model wants it.
        return tokenizer.encode(
            modelTemplate.render(List.of(new ChatTemplate.Message("user", prompt)), true));
      }
      String text =
          chat
              ? ChatTemplate.header("user")
                  + prompt
                  + ChatTemplate.footer()
                  + ChatTemplate.header("assistant")
              : prompt;
      long[] ids = tokenizer.encode(text);
      // BOS as the trainer's dataset adds it (none for models without one, e.g. Qwen).
      long bos = JsonlDataset.SpecialTokens.of(tokenizer.settings()).bos();
      if (bos == JsonlDataset.SpecialTokens.NONE) {
        return ids;
      }
      long[] withBos = new long[ids.length + 1];
      withBos[0] = bos;
      System.arraycopy(ids, 0, withBos, 1, ids.length);
      return withBos;
    }

    LlamaModel load(NDManager manager) {
      LlamaModel model = LlamaModel.load(model(), manager);
      EngineThreads.tuneFor(model.config());
      if (adapter != null) {
        model.setAdapter(LoraAdapter.loadPeft(adapter, model));
      }
      return model;
    }

    private Path model() {
      return model;
    }
  }

  @Command(name = "generate", description = "Generate text (greedy or top-p) with a KV cache.")
  static final class Generate extends ModelOptions implements Callable<Integer> {
    @Option(names = "--max-new-tokens", defaultValue = "64")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 means greedy.")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1.0")
    double topP;

    @Option(names = "--seed", defaultValue = "0")
    long seed;

    @Override
    public Integer call() throws IOException {
      try (NDManager manager = NDManager.newBaseManager();
          TextTokenizer tokenizer = TextTokenizer.load(model)) {
        LlamaModel llama = load(manager);
        long[] prompt = promptIds(tokenizer, llama);
        Set<Long> stop = new java.util.HashSet<>(tokenizer.settings().stopIds());
        llama.config().eosTokenIds().forEach(id -> stop.add((long) id));
        long end = tokenizer.tokenId(ChatTemplate.END);
        if (end >= 0) {
          stop.add(end);
        }
        long[] ids =
            new Generator(llama)
                .generate(
                    prompt, new Generator.Settings(maxNewTokens, temperature, topP, seed), stop);
        long[] text =
            ids.length > 0 && stop.contains(ids[ids.length - 1])
                ? java.util.Arrays.copyOf(ids, ids.length - 1)
                : ids;
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("text", tokenizer.decode(text));
        result.put("tokens", ids);
        result.put("promptTokens", prompt.length);
        Context.out.println(JSON.writeValueAsString(result));
      }
      return TrainerExitCodes.SUCCESS;
    }
  }

  @Command(name = "logprobs", description = "Log-probabilities of a continuation after a prompt.")
  static final class LogProbs extends ModelOptions implements Callable<Integer> {
    @Option(names = "--continuation", required = true)
    String continuation;

    @Override
    public Integer call() throws IOException {
      try (NDManager manager = NDManager.newBaseManager();
          TextTokenizer tokenizer = TextTokenizer.load(model)) {
        LlamaModel llama = load(manager);
        long[] prompt = promptIds(tokenizer, llama);
        long[] ids = tokenizer.encode(continuation);
        float[] logProbs = new Generator(llama).logProbabilities(prompt, ids);
        List<Map<String, Object>> tokens = new ArrayList<>();
        double total = 0;
        for (int i = 0; i < ids.length; i++) {
          Map<String, Object> token = new LinkedHashMap<>();
          token.put("id", ids[i]);
          token.put("text", tokenizer.decode(new long[] {ids[i]}));
          token.put("logprob", logProbs[i]);
          tokens.add(token);
          total += logProbs[i];
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("tokens", tokens);
        result.put("total", total);
        Context.out.println(JSON.writeValueAsString(result));
      }
      return TrainerExitCodes.SUCCESS;
    }
  }
}
