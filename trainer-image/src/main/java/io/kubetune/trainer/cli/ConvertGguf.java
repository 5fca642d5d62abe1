package io.kubetune.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.trainer.gguf.GgufToHuggingFace;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code trainer convert-gguf}: a llama.cpp GGUF file to a Hugging Face model folder. */
@Command(
    name = "convert-gguf",
    description =
        "Convert a GGUF file (Llama architecture; F32/F16/BF16/Q8_0/Q4_0/Q4_1 tensors, byte-level"
            + " BPE tokenizer) into a Hugging Face folder: config.json, model.safetensors (fp32),"
            + " tokenizer.json, tokenizer_config.json, generation_config.json.")
final class ConvertGguf implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(names = "--gguf", required = true, description = "The GGUF file.")
  Path gguf;

  @Option(names = "--output", required = true, description = "Folder to write (created).")
  Path output;

  @Override
  public Integer call() throws IOException {
    long start = System.nanoTime();
    GgufToHuggingFace.Result result = GgufToHuggingFace.convert(gguf, output);
    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("output", result.output().toString());
    summary.put("name", result.name());
    summary.put("parameters", result.parameters());
    summary.put("layers", result.layers());
    summary.put("hiddenSize", result.hiddenSize());
    summary.put("vocabSize", result.vocabSize());
    summary.put("tensorTypes", result.tensorTypes());
    summary.put("seconds", Math.round((System.nanoTime() - start) / 1e7) / 100.0);
    TrainerCli.Context.out.println(JSON.writeValueAsString(summary));
    return TrainerExitCodes.SUCCESS;
  }
}
