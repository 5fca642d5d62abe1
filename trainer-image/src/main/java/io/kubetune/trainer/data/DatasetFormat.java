package io.kubetune.trainer.data;

/** JSONL record formats; mirrors {@code DatasetSpec.Format} of the API. */
public enum DatasetFormat {
  COMPLETION,
  CHAT,
  CLASSIFICATION
}
