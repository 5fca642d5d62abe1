package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;
import io.kubetune.api.Bounds;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class FreezeSpec {
  @Required
  @Min(Bounds.TRAINABLE_LAYERS_MIN)
  @Max(Bounds.TRAINABLE_LAYERS_MAX)
  @JsonPropertyDescription(
      "Number of top decoder layers to train (with the final norm and the head); the rest stay"
          + " frozen. Must not exceed the model's num_hidden_layers.")
  public Integer trainableLayers;
}
