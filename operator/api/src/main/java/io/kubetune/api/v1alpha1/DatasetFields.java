package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Size;

/** Maps the record fields the trainer reads to the names used in the user's JSONL files. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class DatasetFields {
  @Size(max = 128)
  @JsonPropertyDescription("completion format: prompt field. Default prompt.")
  public String prompt;

  @Size(max = 128)
  @JsonPropertyDescription("completion format: completion field. Default completion.")
  public String completion;

  @Size(max = 128)
  @JsonPropertyDescription("chat format: messages field. Default messages.")
  public String messages;

  @Size(max = 128)
  @JsonPropertyDescription("classification format: text field. Default text.")
  public String text;

  @Size(max = 128)
  @JsonPropertyDescription("classification format: label field. Default label.")
  public String label;
}
