package io.kubetune.trainer.serve;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.model.TextTokenizer;
import io.kubetune.trainer.safetensors.Safetensors;
import io.kubetune.trainer.storage.FileDigest;
import io.kubetune.trainer.storage.StorageSettings;
import io.kubetune.trainer.storage.TrainingStaging;
import io.kubetune.trainer.train.EngineThreads;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The models a server answers for: one base model and any number of adapters on it, each verified
 * at load time (digest, architecture fit, classifier head) so that a bad adapter stops the server
 * before it reports ready instead of failing requests. LoRA adapters share the base weights; a
 * fully fine-tuned model (the output of method Full or FreezeLayers) is loaded as its own weights.
 */
public final class ModelRepository implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  public enum Task {
    GENERATION,
    CLASSIFICATION
  }

  /** Where an adapter comes from and, when known, the SHA-256 its weights file must have. */
  public record AdapterSource(String name, String uri, String expectedDigest) {}

  /**
   * A servable model.
   *
   * @param kind {@code base}, {@code lora} or {@code full}
   * @param digest SHA-256 of the weights file that was verified (adapters only)
   */
  public record ServedModel(
      String id,
      String kind,
      Task task,
      LlamaModel model,
      List<String> labels,
      NDArray classifierHead,
      String digest,
      String source,
      long created,
      double loadSeconds) {}

  private final NDManager manager;
  private final TextTokenizer tokenizer;
  private final Map<String, ServedModel> models;
  private final String baseId;

  private ModelRepository(
      NDManager manager, TextTokenizer tokenizer, Map<String, ServedModel> models, String baseId) {
    this.manager = manager;
    this.tokenizer = tokenizer;
    this.models = models;
    this.baseId = baseId;
  }

  /**
   * Downloads (for s3:// URIs) and verifies the base model and the adapters. Every problem is a
   * {@link BadInputException} naming the model, its URI and the fix.
   */
  public static ModelRepository load(
      String baseUri,
      String baseId,
      List<AdapterSource> adapters,
      StorageSettings storage,
      Path workDir,
      PrintStream log)
      throws IOException {
    NDManager manager = NDManager.newBaseManager();
    TextTokenizer tokenizer = null;
    try {
      long start = System.nanoTime();
      Path baseDir = localFolder("--model", baseUri, workDir.resolve("base"), storage);
      LlamaModel base = LlamaModel.load(baseDir, manager);
      EngineThreads.tuneFor(base.config());
      tokenizer = TextTokenizer.load(baseDir);
      Map<String, ServedModel> models = new LinkedHashMap<>();
      long now = System.currentTimeMillis() / 1000;
      models.put(
          baseId,
          new ServedModel(
              baseId,
              "base",
              Task.GENERATION,
              base,
              null,
              null,
              null,
              baseUri,
              now,
              seconds(start)));
      log.printf(
          Locale.ROOT, "loaded base model %s from %s in %.2f s%n", baseId, baseUri, seconds(start));
      for (AdapterSource source : adapters) {
        if (models.containsKey(source.name())) {
          throw new BadInputException(
              "--adapter " + source.name() + ": the name is used twice; give each adapter its own");
        }
        long t = System.nanoTime();
        Path dir =
            localFolder(
                "--adapter " + source.name(),
                source.uri(),
                workDir.resolve("adapter-" + models.size()),
                storage);
        ServedModel adapter = loadAdapter(source, dir, base, manager, now, t);
        models.put(source.name(), adapter);
        log.printf(
            Locale.ROOT,
            "loaded %s adapter %s (%s, sha256 %s) from %s in %.2f s%n",
            adapter.kind(),
            adapter.id(),
            adapter.task().name().toLowerCase(Locale.ROOT),
            adapter.digest(),
            source.uri(),
            adapter.loadSeconds());
      }
      return new ModelRepository(manager, tokenizer, models, baseId);
    } catch (IOException | RuntimeException e) {
      if (tokenizer != null) {
        tokenizer.close();
      }
      manager.close();
      throw e;
    }
  }

  private static ServedModel loadAdapter(
      AdapterSource source, Path dir, LlamaModel base, NDManager manager, long now, long start)
      throws IOException {
    String what = "adapter " + source.name() + " (" + source.uri() + ")";
    boolean lora = Files.exists(dir.resolve("adapter_config.json"));
    boolean full =
        Files.exists(dir.resolve("config.json"))
            && (Files.exists(dir.resolve("model.safetensors"))
                || Files.exists(dir.resolve("model.safetensors.index.json")));
    if (!lora && !full) {
      throw new BadInputException(
          what
              + " holds neither adapter_config.json (a PEFT LoRA adapter) nor config.json and"
              + " model.safetensors (a fully fine-tuned model); point --adapter at the training"
              + " output folder");
    }
    Path weights =
        dir.resolve(
            lora
                ? "adapter_model.safetensors"
                : Files.exists(dir.resolve("model.safetensors"))
                    ? "model.safetensors"
                    : "model.safetensors.index.json");
    if (!Files.exists(weights)) {
      throw new BadInputException(what + " has no " + weights.getFileName());
    }
    String digest = FileDigest.sha256(weights);
    if (source.expectedDigest() != null
        && !source.expectedDigest().isBlank()
        && !source.expectedDigest().equalsIgnoreCase(digest)) {
      throw new BadInputException(
          what
              + ": "
              + weights.getFileName()
              + " has SHA-256 "
              + digest
              + " but "
              + source.expectedDigest()
              + " was expected; the files changed after training or the copy is incomplete."
              + " Re-run the FineTuneJob or fix --adapter-digest");
    }
    List<String> labels = readLabels(dir, what);
    if (lora) {
      JsonNode config = JSON.readTree(dir.resolve("adapter_config.json").toFile());
      boolean classification = "SEQ_CLS".equals(config.path("task_type").asText());
      Map<String, long[]> shapes = new LinkedHashMap<>();
      long[] headShape;
      String headName = LoraAdapter.PEFT_PREFIX + LlamaModel.SCORE;
      try (Safetensors.Reader reader = Safetensors.open(weights)) {
        reader.tensors().forEach((n, info) -> shapes.put(n, info.shape()));
        headShape = shapes.get(headName);
        List<String> problems =
            new ArrayList<>(AdapterCompatibility.problems(base.config(), config, shapes));
        if (classification) {
          if (labels == null) {
            problems.add("a classification adapter needs labels.json next to its weights");
          } else {
            problems.addAll(
                AdapterCompatibility.headProblems(base.config(), headShape, labels.size()));
          }
        }
        if (!problems.isEmpty()) {
          throw new BadInputException(
              what + " does not fit the base model: " + String.join("; ", problems));
        }
        NDArray head = null;
        if (classification) {
          head = manager.create(reader.readFloats(headName), new Shape(headShape));
        }
        LoraAdapter adapter = LoraAdapter.loadPeft(dir, base);
        return new ServedModel(
            source.name(),
            "lora",
            classification ? Task.CLASSIFICATION : Task.GENERATION,
            base.withAdapter(adapter),
            classification ? labels : null,
            head,
            digest,
            source.uri(),
            now,
            seconds(start));
      }
    }
    LlamaModel model = LlamaModel.load(dir, manager);
    if (model.config().vocabSize() != base.config().vocabSize()) {
      throw new BadInputException(
          what
              + " has a vocabulary of "
              + model.config().vocabSize()
              + " tokens but the base model's tokenizer has "
              + base.config().vocabSize()
              + "; serve it with the base it was trained from");
    }
    NDArray head = null;
    if (labels != null) {
      try (Safetensors.Reader reader = Safetensors.open(weights)) {
        long[] headShape =
            reader.tensors().containsKey(LlamaModel.SCORE)
                ? reader.info(LlamaModel.SCORE).shape()
                : null;
        List<String> problems =
            AdapterCompatibility.headProblems(model.config(), headShape, labels.size());
        if (!problems.isEmpty()) {
          throw new BadInputException(what + ": " + String.join("; ", problems));
        }
        head = manager.create(reader.readFloats(LlamaModel.SCORE), new Shape(headShape));
      }
    }
    return new ServedModel(
        source.name(),
        "full",
        labels != null ? Task.CLASSIFICATION : Task.GENERATION,
        model,
        labels,
        head,
        digest,
        source.uri(),
        now,
        seconds(start));
  }

  private static List<String> readLabels(Path dir, String what) throws IOException {
    Path file = dir.resolve("labels.json");
    if (!Files.exists(file)) {
      return null;
    }
    JsonNode labels = JSON.readTree(file.toFile());
    if (!labels.isArray() || labels.size() < 2) {
      throw new BadInputException(what + ": labels.json must be a list of at least 2 labels");
    }
    List<String> result = new ArrayList<>();
    labels.forEach(l -> result.add(l.asText()));
    return List.copyOf(result);
  }

  /** A local folder for a path, file:// URI or s3:// URI (downloaded into {@code target}). */
  static Path localFolder(String field, String uri, Path target, StorageSettings storage)
      throws IOException {
    if (uri.startsWith("s3://")) {
      Files.createDirectories(target);
      TrainingStaging.downloadFolder(field, uri, target, storage);
      return target;
    }
    Path dir = uri.startsWith("file:") ? Path.of(URI.create(uri)) : Path.of(uri);
    if (!Files.isDirectory(dir)) {
      throw new BadInputException(field + " " + uri + " is not a folder; fix the path or URI");
    }
    return dir;
  }

  private static double seconds(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  public String baseId() {
    return baseId;
  }

  public TextTokenizer tokenizer() {
    return tokenizer;
  }

  /** All models, base first. */
  public List<ServedModel> all() {
    return List.copyOf(models.values());
  }

  public ServedModel get(String id) {
    ServedModel model = models.get(id);
    if (model == null) {
      throw ApiException.unknownModel(id, models.keySet());
    }
    return model;
  }

  @Override
  public void close() {
    tokenizer.close();
    manager.close();
  }
}
