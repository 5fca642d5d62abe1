package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;

/** Receives the trainer's structured progress lines (one JSON object per stdout line). */
interface TrainerOutputListener {
  void onEvent(String podName, JsonNode event);
}
