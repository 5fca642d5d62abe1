package io.kubetune.trainer.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.Fixtures;
import io.kubetune.trainer.Testbed;
import io.kubetune.trainer.data.DatasetFormat;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.model.Generator;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.model.TinyLlama;
import io.kubetune.trainer.serve.Inference;
import io.kubetune.trainer.serve.ModelRepository;
import io.kubetune.trainer.serve.RequestParser;
import io.kubetune.trainer.storage.StorageSettings;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PEFT both ways, against the reference stack (transformers 5.24, PEFT 0.21.2): the trainer's
 * outputs load with transformers and PEFT from their folder alone and compute what the project
 * computes; PEFT's adapters (plain, rsLoRA, rank/alpha patterns) compute the same in the project,
 * and DoRA is refused; the exported tokenizer tokenises the way the trainer did.
 */
class PeftInteropTest {
  static final double TOLERANCE = 1e-4;
  static final ObjectMapper JSON = new ObjectMapper();
  static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
  static final List<String> TEXTS =
      List.of(
          "my invoice was charged twice",
          "please help, the app freezes",
          "where is my parcel? courier says arrived today");

  @TempDir static Path dir;
  static Path base;
  static NDManager root;
  static TextTokenizer tokenizer;
  static long[] prompt;
  static long[] continuation;

  @BeforeAll
  static void tinyBase() throws Exception {
    base = dir.resolve("tiny");
    TinyLlama.write(base, new TinyLlama.Size(64, 2, 4, 2, 128), true, 3);
    root = NDManager.newBaseManager();
    tokenizer = TextTokenizer.load(base);
    LlamaModel model = LlamaModel.load(base, root);
    prompt =
        concat(new long[] {model.config().bosTokenId()}, tokenizer.encode("Where is it? lima"));
    continuation =
        concat(tokenizer.encode(" In LIMA, as planned."), new long[] {model.config().eosTokenId()});
    model.close();
  }

  @AfterAll
  static void close() {
    tokenizer.close();
    root.close();
  }

  @Test
  void projectCausalAdapterLoadsWithAutoPeftFromItsFolderAndGivesTheSameLogprobs()
      throws Exception {
    Path out = dir.resolve("lora-causal");
    train(
        TrainingOptions.defaults(
                base,
                Fixtures.completions(dir.resolve("completions.jsonl"), 48, 5),
                DatasetFormat.COMPLETION,
                out)
            .withMethod(TrainingMethod.LORA, 4, 8, List.of("q_proj", "v_proj", "up_proj"), 1));

    JsonNode config = JSON.readTree(out.resolve("adapter_config.json").toFile());
    assertThat(config.get("base_model_name_or_path").asText())
        .isEqualTo(base.toAbsolutePath().toString());
    assertThat(config.at("/kubetune/base_model_uri").asText()).isEqualTo(base.toString());
    assertThat(config.at("/kubetune/base_model_sha256/model.safetensors").asText())
        .hasSize(64)
        .isEqualTo(
            io.kubetune.trainer.storage.FileDigest.sha256(base.resolve("model.safetensors")));
    assertThat(out.resolve("tokenizer.json")).exists();
    assertThat(out.resolve("tokenizer_config.json")).exists();
    assertThat(out.resolve("generation_config.json")).exists();

    float[] project;
    float[] baseOnly;
    try (NDManager scope = root.newSubManager()) {
      LlamaModel model = LlamaModel.load(base, scope);
      baseOnly = new Generator(model).logProbabilities(prompt, continuation);
      model.setAdapter(LoraAdapter.loadPeft(out, model));
      project = new Generator(model).logProbabilities(prompt, continuation);
    }
    JsonNode reference =
        python(
            "causal-adapter",
            Map.of("adapter", out.toString(), "prompt", prompt, "continuation", continuation));
    double diff = maxAbsDiff(project, reference.get("logprobs"));
    System.out.printf(
        "project LoRA adapter in PEFT: max |d logprob| %.2e (adapter moved them by %.3f)%n",
        diff, maxAbsDiff(project, baseOnly));
    assertThat(maxAbsDiff(project, baseOnly)).as("the adapter is not a no-op").isGreaterThan(0.01);
    assertThat(diff).isLessThan(TOLERANCE);
    assertThat(maxAbsDiff(project, reference.get("transformers_logprobs"))).isLessThan(TOLERANCE);
  }

  @Test
  void projectClassifierAdapterLoadsWithAutoPeftAndClassifiesAPaddedBatchAsTheServerDoes()
      throws Exception {
    Path out = dir.resolve("lora-cls");
    train(
        TrainingOptions.defaults(
                base,
                Fixtures.tickets(dir.resolve("tickets.jsonl"), 96, 1),
                DatasetFormat.CLASSIFICATION,
                out)
            .withMethod(TrainingMethod.LORA, 4, 8, List.of("q_proj", "v_proj"), 1));

    JsonNode kwargs =
        JSON.readTree(out.resolve("adapter_config.json").toFile())
            .at("/kubetune/sequence_classification_kwargs");
    assertThat(kwargs.get("num_labels").asInt()).isEqualTo(Fixtures.TICKET_LABELS.size());
    assertThat(kwargs.get("pad_token_id").asLong()).isEqualTo(tokenizer.tokenId("<pad>"));

    JsonNode reference =
        python("seqcls-adapter", Map.of("adapter", out.toString(), "texts", TEXTS));
    assertSameClassification(out, reference);
  }

  @Test
  void fullClassifierExportLoadsWithAutoModelAndClassifiesAPaddedBatchAsTheServerDoes()
      throws Exception {
    Path out = dir.resolve("full-cls");
    train(
        TrainingOptions.defaults(
                base,
                Fixtures.tickets(dir.resolve("tickets-full.jsonl"), 96, 4),
                DatasetFormat.CLASSIFICATION,
                out)
            .withMethod(TrainingMethod.FULL, 4, 8, List.of("q_proj"), 1));

    JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
    assertThat(config.get("pad_token_id").asLong()).isEqualTo(tokenizer.tokenId("<pad>"));
    assertThat(config.at("/id2label/0").asText())
        .isEqualTo(Fixtures.TICKET_LABELS.stream().sorted().findFirst().orElseThrow());

    JsonNode reference = python("full-seqcls", Map.of("model", out.toString(), "texts", TEXTS));
    assertSameClassification(out, reference);
  }

  @Test
  void fullCausalExportLoadsWithAutoModelForCausalLmAndGivesTheSameLogprobs() throws Exception {
    Path out = dir.resolve("full-causal");
    train(
        TrainingOptions.defaults(
                base,
                Fixtures.completions(dir.resolve("completions-full.jsonl"), 48, 6),
                DatasetFormat.COMPLETION,
                out)
            .withMethod(TrainingMethod.FULL, 4, 8, List.of("q_proj"), 1));
    float[] project;
    try (NDManager scope = root.newSubManager()) {
      project = new Generator(LlamaModel.load(out, scope)).logProbabilities(prompt, continuation);
    }
    JsonNode reference =
        python(
            "full-causal",
            Map.of("model", out.toString(), "prompt", prompt, "continuation", continuation));
    assertThat(maxAbsDiff(project, reference.get("logprobs"))).isLessThan(TOLERANCE);
    long pad = tokenizer.tokenId("<pad>");
    assertThat(reference.get("generation").toString())
        .isEqualTo(
            JSON.createObjectNode()
                .put("bos_token_id", prompt[0])
                .put("eos_token_id", continuation[continuation.length - 1])
                .put("pad_token_id", pad)
                .toString());
    assertThat(reference.get("pad_token_id").asLong()).isEqualTo(pad);
    assertThat(reference.get("chat_prompt").asText())
        .isEqualTo("<s><|user|>\nhi<|end|>\n<|assistant|>\n");
  }

  @Test
  void peftAdaptersGiveTheSameLogprobsInTheProjectAndDoraIsRefused() throws Exception {
    Path adapters = dir.resolve("peft-adapters");
    JsonNode reference =
        python(
            "peft-adapters",
            Map.of(
                "base",
                base.toString(),
                "out",
                adapters.toString(),
                "prompt",
                prompt,
                "continuation",
                continuation));
    for (String name : List.of("plain", "rslora", "patterns")) {
      try (NDManager scope = root.newSubManager()) {
        LlamaModel model = LlamaModel.load(base, scope);
        float[] baseOnly = new Generator(model).logProbabilities(prompt, continuation);
        model.setAdapter(LoraAdapter.loadPeft(adapters.resolve(name), model));
        float[] project = new Generator(model).logProbabilities(prompt, continuation);
        double diff = maxAbsDiff(project, reference.get(name));
        System.out.printf(
            "PEFT %s adapter in the project: max |d logprob| %.2e (adapter moved them by %.3f)%n",
            name, diff, maxAbsDiff(project, baseOnly));
        assertThat(maxAbsDiff(project, baseOnly)).as(name + " is not a no-op").isGreaterThan(0.01);
        assertThat(diff).as(name).isLessThan(TOLERANCE);
      }
    }
    // The server checks shapes with the per-module ranks of the patterns and serves it.
    try (ModelRepository repository = serve(adapters.resolve("patterns"))) {
      assertThat(repository.get("adapter").kind()).isEqualTo("lora");
    }

    Path dora = adapters.resolve("dora");
    try (NDManager scope = root.newSubManager()) {
      LlamaModel model = LlamaModel.load(base, scope);
      assertThatThrownBy(() -> LoraAdapter.loadPeft(dora, model))
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("use_dora = true (DoRA (weight-decomposed LoRA)) is not supported");
    }
    assertThatThrownBy(() -> serve(dora))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("does not fit the base model")
        .hasMessageContaining("use_dora");
  }

  @Test
  void exportedTokenizerTokenisesAndRendersChatsAsTheTrainerDoes() throws Exception {
    Path out = dir.resolve("tokenizer-fixture");
    try (NDManager scope = root.newSubManager()) {
      LlamaModel model = LlamaModel.load(base, scope);
      long bos = model.config().bosTokenId();
      long eos = model.config().eosTokenId();
      writeTokenizerFiles(base, out, bos, eos, true);
      List<List<Map<String, String>>> chats =
          List.of(
              List.of(
                  Map.of("role", "system", "content", "Answer briefly."),
                  Map.of("role", "user", "content", "Where is the meeting?"),
                  Map.of("role", "assistant", "content", " In PARIS, as planned.")),
              List.of(Map.of("role", "user", "content", "hello\nthere")));
      JsonNode reference =
          python("tokenize", Map.of("tokenizer", out.toString(), "texts", TEXTS, "chats", chats));

      // Classification: BOS + text + EOS, as JsonlDataset tokenises a record.
      for (int i = 0; i < TEXTS.size(); i++) {
        long[] trainer = concat(new long[] {bos}, tokenizer.encode(TEXTS.get(i)), new long[] {eos});
        assertThat(ids(reference.at("/texts/" + i))).as(TEXTS.get(i)).containsExactly(trainer);
      }
      // Chats through the project's template (this base has none): as JsonlDataset and the server.
      Path chatFile = dir.resolve("chats.jsonl");
      List<String> lines = new ArrayList<>();
      for (List<Map<String, String>> chat : chats) {
        lines.add(JSON.writeValueAsString(Map.of("messages", chat)));
      }
      Files.write(chatFile, lines);
      JsonlDataset dataset =
          new JsonlDataset(
              DatasetFormat.CHAT,
              JsonlDataset.Fields.DEFAULT,
              tokenizer,
              new JsonlDataset.SpecialTokens(bos, eos),
              512);
      // The second chat has no assistant turn, so only the first is a training record.
      long[] trained =
          dataset
              .tokenize(chatFile, JsonlDataset.readLines(chatFile).subList(0, 1), null)
              .get(0)
              .tokens();
      assertThat(ids(reference.at("/chats/0/full/ids"))).containsExactly(trained);
      assertThat(reference.at("/chats/0/full/text").asText())
          .isEqualTo(
              "<s><|system|>\nAnswer briefly.<|end|>\n<|user|>\nWhere is the meeting?<|end|>\n"
                  + "<|assistant|>\n In PARIS, as planned.<|end|>\n");
      List<RequestParser.Message> messages =
          List.of(new RequestParser.Message("user", "hello\nthere"));
      assertThat(ids(reference.at("/chats/1/prompt/ids")))
          .containsExactly(new Inference(tokenizer).chatPrompt(model, messages));
    }
  }

  @Test
  void exportedRealTokenizersTokeniseAsTheTrainerAndKeepTheirChatTemplate() throws Exception {
    // Real Llama 3.1 and Qwen3 tokenizers, with the token ids of their models' config.json.
    record Real(String name, long bos, String eosIds, long pad) {}
    record Export(Real real, boolean classification, long eos, Path folder, Path out) {}
    List<String> texts =
        List.of("Hello world", " leading space, ünïcödé & 数字 123", "a<|im_end|>b<|eot_id|>");
    List<Export> exports = new ArrayList<>();
    List<Map<String, Object>> jobs = new ArrayList<>();
    for (Real real :
        List.of(
            new Real("llama3_1", 128000, "[128001,128008,128009]", -1),
            new Real("qwen3", 151643, "151645", 151643))) {
      Path folder = dir.resolve("real-" + real.name());
      Files.createDirectories(folder);
      Path source = Testbed.tokenizer(real.name());
      Files.copy(source.resolve("tokenizer.json"), folder.resolve("tokenizer.json"));
      Files.copy(source.resolve("tokenizer_config.json"), folder.resolve("tokenizer_config.json"));
      Files.writeString(
          folder.resolve("config.json"),
          "{\"model_type\": \"llama\", \"bos_token_id\": "
              + real.bos()
              + ", \"eos_token_id\": "
              + real.eosIds()
              + "}");
      JsonNode eosIds = JSON.readTree(real.eosIds());
      long eos = eosIds.isArray() ? eosIds.get(0).asLong() : eosIds.asLong(); // as LlamaConfig
      for (boolean classification : List.of(true, false)) {
        Path out = dir.resolve("real-" + real.name() + "-" + classification);
        TransformersFiles files = writeTokenizerFiles(folder, out, real.bos(), eos, classification);
        assertThat(files.padTokenId()).as(real.name() + " pad").isNotNull();
        if (classification) {
          assertThat(files.padTokenId()).as("a classifier's pad is not its EOS").isNotEqualTo(eos);
        }
        if (real.pad() >= 0) {
          assertThat(files.padTokenId()).isEqualTo(real.pad());
        }
        assertThat(files.tokenizerConfig().get("chat_template").asText())
            .isEqualTo(
                JSON.readTree(source.resolve("tokenizer_config.json").toFile())
                    .get("chat_template")
                    .asText());
        assertThat(files.generationConfig().get("eos_token_id").toString())
            .isEqualTo(eosIds.toString());
        exports.add(new Export(real, classification, eos, folder, out));
        jobs.add(Map.of("tokenizer", out.toString(), "texts", texts));
      }
    }
    JsonNode reference = python("tokenize", Map.of("jobs", jobs));
    for (int e = 0; e < exports.size(); e++) {
      Export export = exports.get(e);
      try (TextTokenizer real = TextTokenizer.load(export.folder())) {
        for (int i = 0; i < texts.size(); i++) {
          long[] trainer =
              export.classification()
                  ? concat(
                      new long[] {export.real().bos()},
                      real.encode(texts.get(i)),
                      new long[] {export.eos()})
                  : concat(new long[] {export.real().bos()}, real.encode(texts.get(i)));
          assertThat(ids(reference.at("/" + e + "/texts/" + i)))
              .as(
                  export.real().name()
                      + " classification="
                      + export.classification()
                      + ": "
                      + texts.get(i))
              .containsExactly(trainer);
        }
      }
    }
  }

  private static TransformersFiles writeTokenizerFiles(
      Path from, Path to, long bos, long eos, boolean classification) throws Exception {
    Files.createDirectories(to);
    TransformersFiles files = TransformersFiles.derive(from, bos, eos, classification);
    Files.writeString(to.resolve("tokenizer.json"), JSON.writeValueAsString(files.tokenizer()));
    Files.writeString(
        to.resolve("tokenizer_config.json"), JSON.writeValueAsString(files.tokenizerConfig()));
    return files;
  }

  private void assertSameClassification(Path out, JsonNode reference) throws Exception {
    try (ModelRepository repository = serve(out)) {
      List<Inference.Classification> project =
          new Inference(repository.tokenizer()).classify(repository.get("adapter"), TEXTS);
      for (int i = 0; i < TEXTS.size(); i++) {
        Inference.Classification c = project.get(i);
        assertThat(reference.at("/labels/" + i).asText()).isEqualTo(c.label());
        double diff = 0;
        for (int k = 0; k < reference.at("/probabilities/" + i).size(); k++) {
          String label = reference.at("/id2label/" + k).asText();
          diff =
              Math.max(
                  diff,
                  Math.abs(
                      c.probabilities().get(label)
                          - reference.at("/probabilities/" + i + "/" + k).asDouble()));
        }
        System.out.printf(
            "%s: %s, max |d probability| %.2e%n", out.getFileName(), c.probabilities(), diff);
        assertThat(diff).isLessThan(TOLERANCE);
      }
    }
  }

  private static ModelRepository serve(Path adapter) throws Exception {
    return ModelRepository.load(
        base.toString(),
        "base",
        List.of(new ModelRepository.AdapterSource("adapter", adapter.toString(), null)),
        StorageSettings.defaults(),
        dir.resolve("serve-work"),
        QUIET);
  }

  private static void train(TrainingOptions options) throws Exception {
    TrainingOptions quick =
        options
            .withSchedule(24, 1, 2e-2, 8, 1, 0)
            .withEvaluation(1000, 0, "eval_loss", false)
            .withRegularisation(0.0, 1.0, 0.0, 7);
    try (FineTuner tuner = new FineTuner(quick, ProgressReporter.silent())) {
      tuner.export(tuner.train());
    }
  }

  private static JsonNode python(String command, Map<String, Object> request) throws Exception {
    Path file = Files.createTempFile(dir, command, ".json");
    JSON.writeValue(file.toFile(), request);
    return JSON.readTree(
        Testbed.run("peft_interop.py", List.of(command, file.toString()), 300).orThrow());
  }

  private static double maxAbsDiff(float[] project, JsonNode reference) {
    assertThat(reference.size()).isEqualTo(project.length);
    double max = 0;
    for (int i = 0; i < project.length; i++) {
      max = Math.max(max, Math.abs(project[i] - reference.get(i).asDouble()));
    }
    return max;
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  private static long[] ids(JsonNode node) {
    long[] ids = new long[node.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = node.get(i).asLong();
    }
    return ids;
  }

  private static long[] concat(long[]... parts) {
    int length = 0;
    for (long[] p : parts) {
      length += p.length;
    }
    long[] all = new long[length];
    int pos = 0;
    for (long[] p : parts) {
      System.arraycopy(p, 0, all, pos, p.length);
      pos += p.length;
    }
    return all;
  }
}
