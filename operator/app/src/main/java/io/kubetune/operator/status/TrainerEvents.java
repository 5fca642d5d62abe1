package io.kubetune.operator.status;

import com.fasterxml.jackson.databind.JsonNode;
import io.kubetune.operator.model.Json;
import java.util.ArrayList;
import java.util.List;

/**
 * The JSON event lines of a trainer log tail ({@code {"event":"progress",...}}, see
 * docs/trainer.md), oldest first. Other lines (library output, a line cut off by the tail) are
 * skipped.
 */
final class TrainerEvents {
  private TrainerEvents() {}

  static List<JsonNode> parse(String logTail) {
    List<JsonNode> events = new ArrayList<>();
    if (logTail == null) {
      return events;
    }
    for (String line : logTail.split("\n")) {
      String trimmed = line.strip();
      if (!trimmed.startsWith("{")) {
        continue;
      }
      try {
        JsonNode event = Json.mapper().readTree(trimmed);
        if (event != null && event.hasNonNull("event")) {
          events.add(event);
        }
      } catch (Exception notJson) {
        // a partial line or ordinary output that happens to start with '{'
      }
    }
    return events;
  }
}
