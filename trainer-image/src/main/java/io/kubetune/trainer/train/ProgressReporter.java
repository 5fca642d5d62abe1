package io.kubetune.trainer.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes one JSON object per line (the operator and the local mode parse them): {@code
 * {"event":"progress","step":..,"totalSteps":..,"epoch":..,"loss":..,"lr":..,
 * "tokensPerSecond":..,"etaSeconds":..}}, {@code {"event":"eval",...}} and {@code
 * {"event":"done",...}}.
 */
public final class ProgressReporter {
  private static final ObjectMapper JSON =
      new ObjectMapper().disable(SerializationFeature.FAIL_ON_EMPTY_BEANS);

  private final PrintStream out;

  public ProgressReporter(PrintStream out) {
    this.out = out;
  }

  public static ProgressReporter silent() {
    return new ProgressReporter(null);
  }

  public void emit(String event, Map<String, ?> fields) {
    if (out == null) {
      return;
    }
    Map<String, Object> line = new LinkedHashMap<>();
    line.put("event", event);
    fields.forEach(
        (k, v) -> line.put(k, v instanceof Double d && !Double.isFinite(d) ? d.toString() : v));
    try {
      out.println(JSON.writeValueAsString(line));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
    out.flush();
  }
}
