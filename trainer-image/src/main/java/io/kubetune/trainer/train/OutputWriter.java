package io.kubetune.trainer.train;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.trainer.data.JsonlDataset;
import io.kubetune.trainer.model.LlamaModel;
import io.kubetune.trainer.model.LoraAdapter;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes a run's result (layout in docs/trainer.md): a PEFT adapter for LoRA or Hugging Face
 * weights for Full/FreezeLayers, with the tokenizer and generation files transformers needs ({@link
 * TransformersFiles}), {@code metrics.json} and {@code summary.txt}. Each file is written under a
 * temporary name and moved into place.
 */
public final class OutputWriter {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private OutputWriter() {}

  public static void write(
      TrainingOptions options,
      LlamaModel model,
      JsonlDataset.SpecialTokens special,
      NDArray classifierHead,
      List<String> labels,
      FineTuner.Result result)
      throws IOException {
    Path dir = options.output();
    Files.createDirectories(dir);
    boolean classification = labels != null;
    Path base = options.baseModel();
    // The same BOS/EOS the trainer's dataset added, so transformers tokenises as training did.
    TransformersFiles hf =
        TransformersFiles.derive(base, special.bos(), special.eos(), classification);
    if (options.method() == TrainingMethod.LORA) {
      Map<String, NDArray> extra = new LinkedHashMap<>();
      ObjectNode record = TransformersFiles.baseRecord(base, options.baseModelName());
      if (classification) {
        extra.put(LoraAdapter.PEFT_PREFIX + LlamaModel.SCORE, classifierHead);
        // PEFT loads the base with AutoModelForSequenceClassification, which reads the number of
        // labels from the base's config.json: these are the keyword arguments that make it right.
        ObjectNode kwargs = record.putObject("sequence_classification_kwargs");
        putLabels(kwargs, labels);
        if (hf.padTokenId() != null) {
          kwargs.put("pad_token_id", hf.padTokenId());
        }
      }
      model
          .adapter()
          .savePeft(
              dir,
              TransformersFiles.baseModelNameOrPath(base, options.baseModelName()),
              classification ? "SEQ_CLS" : "CAUSAL_LM",
              extra,
              record);
    } else {
      Map<String, Safetensors.FloatTensor> tensors = new LinkedHashMap<>();
      model.weights().keySet().forEach(n -> tensors.put(n, model.floatTensor(n)));
      // Keep the base model's config.json (Qwen2/Mistral fields, rope scaling, token ids) as is.
      ObjectNode config = (ObjectNode) JSON.readTree(base.resolve("config.json").toFile());
      if (hf.padTokenId() != null) {
        config.put("pad_token_id", hf.padTokenId());
      }
      if (classification) {
        tensors.put(LlamaModel.SCORE, LlamaModel.toFloatTensor(classifierHead));
        config.putArray("architectures").add("LlamaForSequenceClassification");
        putLabels(config, labels);
      }
      Safetensors.writeFloats(dir.resolve("model.safetensors"), tensors);
      writeAtomically(dir.resolve("config.json"), JSON.writeValueAsString(config));
    }
    // Compact: a real tokenizer.json is megabytes of vocabulary and merges.
    writeAtomically(
        dir.resolve("tokenizer.json"),
        JSON.writer()
            .without(SerializationFeature.INDENT_OUTPUT)
            .writeValueAsString(hf.tokenizer()));
    if (Files.exists(base.resolve("chat_template.jinja"))) {
      copyAtomically(base.resolve("chat_template.jinja"), dir.resolve("chat_template.jinja"));
    }
    writeAtomically(
        dir.resolve("tokenizer_config.json"), JSON.writeValueAsString(hf.tokenizerConfig()));
    writeAtomically(
        dir.resolve("generation_config.json"), JSON.writeValueAsString(hf.generationConfig()));
    if (classification) {
      writeAtomically(dir.resolve("labels.json"), JSON.writeValueAsString(labels));
    }
    writeAtomically(dir.resolve("metrics.json"), JSON.writeValueAsString(metrics(options, result)));
    writeAtomically(dir.resolve("summary.txt"), summary(options, result));
  }

  static ObjectNode metrics(TrainingOptions options, FineTuner.Result result) {
    ObjectNode root = JSON.createObjectNode();
    root.put("method", options.method().name());
    root.put("format", options.format().name().toLowerCase(Locale.ROOT));
    root.put("baseModel", options.baseModelName());
    root.put("steps", result.steps());
    root.put("plannedSteps", result.plannedSteps());
    root.put("stoppedEarly", result.stoppedEarly());
    root.put("seconds", result.seconds());
    root.put("tokensPerSecond", result.tokensPerSecond());
    root.put("trainableParameters", result.trainableParameters());
    root.put("totalParameters", result.totalParameters());
    root.put("metric", options.metric());
    if (result.labels() != null) {
      ArrayNode labels = root.putArray("labels");
      result.labels().forEach(labels::add);
    }
    if (result.initial() != null) {
      root.set("initial", evaluation(result.initial()));
    }
    if (result.last() != null) {
      root.set("final", evaluation(result.last()));
    }
    if (result.best() != null) {
      root.set("best", evaluation(result.best()));
    }
    if (result.exported() != null) {
      // The evaluation of the exported weights (the tuned model): final, or the best checkpoint's
      // with checkpoints.exportBest.
      root.set("exported", evaluation(result.exported()));
    }
    root.put("exportBest", options.exportBest());
    ArrayNode history = root.putArray("history");
    result.history().forEach(e -> history.add(evaluation(e)));
    ArrayNode loss = root.putArray("trainLoss");
    for (double[] point : result.trainLoss()) {
      loss.addObject().put("step", (long) point[0]).put("loss", point[1]);
    }
    return root;
  }

  private static ObjectNode evaluation(FineTuner.Evaluation e) {
    ObjectNode node = JSON.createObjectNode();
    node.put("step", e.step());
    node.put("epoch", e.epoch());
    e.metrics().forEach(node::put);
    return node;
  }

  static String summary(TrainingOptions options, FineTuner.Result r) {
    StringBuilder s = new StringBuilder();
    s.append("KubeTune fine-tuning summary\n");
    s.append(String.format(Locale.ROOT, "base model:   %s%n", options.baseModelName()));
    s.append(
        String.format(
            Locale.ROOT,
            "method:       %s (%,d of %,d parameters trainable, %.3f%%)%n",
            options.method(),
            r.trainableParameters(),
            r.totalParameters(),
            100.0 * r.trainableParameters() / r.totalParameters()));
    s.append(
        String.format(
            Locale.ROOT,
            "steps:        %d of %d%s%n",
            r.steps(),
            r.plannedSteps(),
            r.stoppedEarly() ? " (stopped early)" : ""));
    if (!r.trainLoss().isEmpty()) {
      s.append(
          String.format(
              Locale.ROOT,
              "train loss:   %.4f -> %.4f%n",
              r.trainLoss().get(0)[1],
              r.trainLoss().get(r.trainLoss().size() - 1)[1]));
    }
    FineTuner.Evaluation tuned = r.exported() != null ? r.exported() : r.last();
    if (r.initial() != null && tuned != null) {
      s.append(
          String.format(
              Locale.ROOT,
              "held-out:     base -> tuned (step %d%s)%n",
              tuned.step(),
              options.exportBest() ? ", the best checkpoint by " + options.metric() : ""));
      for (String key : tuned.metrics().keySet()) {
        Double base = r.initial().metrics().get(key);
        s.append(
            String.format(
                Locale.ROOT,
                "%-13s %s -> %.4f%n",
                key + ":",
                base == null ? "n/a" : String.format(Locale.ROOT, "%.4f", base),
                tuned.metrics().get(key)));
      }
    }
    if (r.best() != null) {
      s.append(
          String.format(
              Locale.ROOT,
              "best %s:  %.4f at step %d%n",
              options.metric(),
              r.best().metrics().get(options.metric()),
              r.best().step()));
    }
    s.append(
        String.format(
            Locale.ROOT,
            "throughput:   %.0f tokens/s over %.1f s%n",
            r.tokensPerSecond(),
            r.seconds()));
    return s.toString();
  }

  /** {@code num_labels}, {@code id2label} and {@code label2id} as transformers reads them. */
  private static void putLabels(ObjectNode node, List<String> labels) {
    node.put("num_labels", labels.size());
    ObjectNode id2label = node.putObject("id2label");
    ObjectNode label2id = node.putObject("label2id");
    for (int i = 0; i < labels.size(); i++) {
      id2label.put(String.valueOf(i), labels.get(i));
      label2id.put(labels.get(i), i);
    }
  }

  private static void copyAtomically(Path source, Path target) throws IOException {
    Path copy =
        Files.createTempFile(
            target.toAbsolutePath().getParent(), "." + target.getFileName(), ".tmp");
    Files.copy(source, copy, StandardCopyOption.REPLACE_EXISTING);
    Safetensors.readableByAll(copy);
    Files.move(copy, target, StandardCopyOption.REPLACE_EXISTING);
  }

  static void writeAtomically(Path file, String content) throws IOException {
    Path temp =
        Files.createTempFile(file.toAbsolutePath().getParent(), "." + file.getFileName(), ".tmp");
    Files.writeString(temp, content);
    Safetensors.readableByAll(temp);
    Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
