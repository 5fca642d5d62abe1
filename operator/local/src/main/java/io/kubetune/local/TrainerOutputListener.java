package io.kubetune.local;

import io.kubetune.api.trainer.TrainerEvent;

/** Receives the trainer's events (one JSON object per stdout line, parsed by the protocol). */
public interface TrainerOutputListener {
  void onEvent(String podName, TrainerEvent event);
}
