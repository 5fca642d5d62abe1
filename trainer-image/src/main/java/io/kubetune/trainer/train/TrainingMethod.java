package io.kubetune.trainer.train;

/** Which weights train; mirrors {@code MethodSpec.Type} of the API. */
public enum TrainingMethod {
  LORA,
  FULL,
  FREEZE_LAYERS
}
