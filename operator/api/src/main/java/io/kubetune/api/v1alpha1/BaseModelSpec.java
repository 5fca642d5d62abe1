package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.StorageUri;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class BaseModelSpec {

  @Required
  @Size(max = 1024)
  @Pattern(StorageUri.PATTERN)
  @JsonPropertyDescription(
      "Directory of a Hugging Face-format Llama-architecture model (config.json,"
          + " model.safetensors or sharded safetensors + index, tokenizer.json):"
          + " s3://bucket/prefix/ or pvc://claim/path/.")
  public String uri;

  @Size(max = 128)
  @JsonPropertyDescription(
      "Optional revision label or sha256 digest of model.safetensors, recorded with the adapter"
          + " so a serving deployment can check it is paired with the right base.")
  public String revision;
}
