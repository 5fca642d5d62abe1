package io.kubetune.api.trainer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One line of the trainer's event protocol: the trainer writes one JSON object per line to stdout
 * ({@code {"event":"progress","step":..,...}}, see docs/trainer.md); the operator reads them from
 * the pod's log tail and local mode from the process's stdout. {@link #toLine} is the one writer,
 * {@link #parse} and {@link #parseLog} the one parser.
 *
 * <p>Fields are boxed and null when a line lacks them, so a line from an older or newer trainer
 * still parses; an event name this version does not know becomes {@link Unknown}, which readers
 * ignore. A non-finite number is written as a string ({@code "NaN"}, {@code "Infinity"}) because
 * JSON has none, and read back as the double.
 */
public sealed interface TrainerEvent {

  /** The value of the line's {@code event} field. */
  String name();

  /** The base checkpoint was read: what was loaded and how long it took. */
  record Loaded(
      String modelType,
      Long parameters,
      Long tensors,
      Long files,
      Long bytes,
      List<String> dtypes,
      Double seconds)
      implements TrainerEvent {
    public static final String NAME = "loaded";

    @Override
    public String name() {
      return NAME;
    }
  }

  /** One optimizer step done. */
  record Progress(
      Long step,
      Long totalSteps,
      Double epoch,
      Double loss,
      Double lr,
      Double gradNorm,
      Double tokensPerSecond,
      Double etaSeconds)
      implements TrainerEvent {
    public static final String NAME = "progress";

    @Override
    public String name() {
      return NAME;
    }
  }

  /** An evaluation on the validation set at {@code step}; metrics are top-level fields. */
  record Eval(Long step, Map<String, Double> metrics) implements TrainerEvent {
    public static final String NAME = "eval";

    public Eval {
      metrics = metrics == null ? Map.of() : unmodifiable(metrics);
    }

    @Override
    public String name() {
      return NAME;
    }
  }

  /** A checkpoint was committed at {@code uri}; {@code metrics} are the last evaluation's. */
  record Checkpoint(Long step, String uri, String time, Map<String, Double> metrics)
      implements TrainerEvent {
    public static final String NAME = "checkpoint";

    public Checkpoint {
      metrics = metrics == null ? Map.of() : unmodifiable(metrics);
    }

    @Override
    public String name() {
      return NAME;
    }
  }

  /**
   * The trainer resumed from the checkpoint at {@code uri}, or (no {@code uri}, step 0) started
   * over because every checkpoint was rejected; {@code skipped} lists the rejected ones.
   */
  record Resume(
      Long step, String uri, String time, Map<String, Double> metrics, List<Skipped> skipped)
      implements TrainerEvent {
    public static final String NAME = "resume";

    public Resume {
      metrics = metrics == null ? Map.of() : unmodifiable(metrics);
      skipped = skipped == null ? List.of() : List.copyOf(skipped);
    }

    @Override
    public String name() {
      return NAME;
    }
  }

  /** A checkpoint rejected at resume: its step, URI and why. */
  record Skipped(Long step, String uri, String reason) {}

  /**
   * Something went wrong and training goes on; {@code reason} {@value #CHECKPOINT_FAILED}: the
   * checkpoint of {@code step} could not be written.
   */
  record Warning(
      String reason, Long step, Long consecutiveFailures, Long lastCheckpointStep, String message)
      implements TrainerEvent {
    public static final String NAME = "warning";
    public static final String CHECKPOINT_FAILED = "CheckpointFailed";

    @Override
    public String name() {
      return NAME;
    }
  }

  /** SIGTERM arrived; the trainer stopped after {@code step}. */
  record Preempted(Long step) implements TrainerEvent {
    public static final String NAME = "preempted";

    @Override
    public String name() {
      return NAME;
    }
  }

  /**
   * Training finished and the result was exported; metrics (top-level) are the evaluation of the
   * exported weights: the last one, or the best checkpoint's with {@code checkpoints.exportBest}.
   */
  record Done(Long steps, Boolean stoppedEarly, String output, Map<String, Double> metrics)
      implements TrainerEvent {
    public static final String NAME = "done";

    public Done {
      metrics = metrics == null ? Map.of() : unmodifiable(metrics);
    }

    @Override
    public String name() {
      return NAME;
    }
  }

  /** A line with an event name this version does not know (a newer trainer): kept, not read. */
  record Unknown(String name, String line) implements TrainerEvent {}

  // ---- the writer ----

  /** The event as one JSON line (no newline); null fields and empty nested metrics are left out. */
  static String toLine(TrainerEvent event) {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    if (event instanceof Unknown u) {
      return u.line();
    }
    o.put("event", event.name());
    if (event instanceof Loaded l) {
      putText(o, "modelType", l.modelType());
      putNumber(o, "parameters", l.parameters());
      putNumber(o, "tensors", l.tensors());
      putNumber(o, "files", l.files());
      putNumber(o, "bytes", l.bytes());
      if (l.dtypes() != null) {
        l.dtypes().forEach(o.putArray("dtypes")::add);
      }
      putNumber(o, "seconds", l.seconds());
    } else if (event instanceof Progress p) {
      putNumber(o, "step", p.step());
      putNumber(o, "totalSteps", p.totalSteps());
      putNumber(o, "epoch", p.epoch());
      putNumber(o, "loss", p.loss());
      putNumber(o, "lr", p.lr());
      putNumber(o, "gradNorm", p.gradNorm());
      putNumber(o, "tokensPerSecond", p.tokensPerSecond());
      putNumber(o, "etaSeconds", p.etaSeconds());
    } else if (event instanceof Eval e) {
      putNumber(o, "step", e.step());
      e.metrics().forEach((k, v) -> putNumber(o, k, v));
    } else if (event instanceof Checkpoint c) {
      putNumber(o, "step", c.step());
      putText(o, "uri", c.uri());
      putText(o, "time", c.time());
      putMetrics(o, c.metrics());
    } else if (event instanceof Resume r) {
      putNumber(o, "step", r.step());
      putText(o, "uri", r.uri());
      putText(o, "time", r.time());
      putMetrics(o, r.metrics());
      if (!r.skipped().isEmpty()) {
        var list = o.putArray("skipped");
        for (Skipped s : r.skipped()) {
          ObjectNode entry = list.addObject();
          putNumber(entry, "step", s.step());
          putText(entry, "uri", s.uri());
          putText(entry, "reason", s.reason());
        }
      }
    } else if (event instanceof Warning w) {
      putText(o, "reason", w.reason());
      putNumber(o, "step", w.step());
      putNumber(o, "consecutiveFailures", w.consecutiveFailures());
      putNumber(o, "lastCheckpointStep", w.lastCheckpointStep());
      putText(o, "message", w.message());
    } else if (event instanceof Preempted p) {
      putNumber(o, "step", p.step());
    } else if (event instanceof Done d) {
      putNumber(o, "steps", d.steps());
      if (d.stoppedEarly() != null) {
        o.put("stoppedEarly", d.stoppedEarly());
      }
      putText(o, "output", d.output());
      d.metrics().forEach((k, v) -> putNumber(o, k, v));
    }

    try {
      return Codec.JSON.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  // ---- the parser ----

  /**
   * The event on one line, or empty when the line is not an event (ordinary output, a line cut off
   * by the log tail, JSON without an {@code event} field).
   */
  static Optional<TrainerEvent> parse(String line) {
    if (line == null) {
      return Optional.empty();
    }
    String trimmed = line.strip();
    if (!trimmed.startsWith("{")) {
      return Optional.empty();
    }
    JsonNode o;
    try {
      o = Codec.JSON.readTree(trimmed);
    } catch (Exception notJson) {
      // a partial line or ordinary output that happens to start with '{'
      return Optional.empty();
    }
    if (o == null || !o.isObject() || !o.hasNonNull("event")) {
      return Optional.empty();
    }
    String name = o.get("event").asText();
    TrainerEvent event =
        switch (name) {
          case Loaded.NAME ->
              new Loaded(
                  text(o, "modelType"),
                  integer(o, "parameters"),
                  integer(o, "tensors"),
                  integer(o, "files"),
                  integer(o, "bytes"),
                  texts(o.get("dtypes")),
                  number(o, "seconds"));
          case Progress.NAME ->
              new Progress(
                  integer(o, "step"),
                  integer(o, "totalSteps"),
                  number(o, "epoch"),
                  number(o, "loss"),
                  number(o, "lr"),
                  number(o, "gradNorm"),
                  number(o, "tokensPerSecond"),
                  number(o, "etaSeconds"));
          case Eval.NAME -> new Eval(integer(o, "step"), topLevelMetrics(o, "event", "step"));
          case Checkpoint.NAME ->
              new Checkpoint(
                  integer(o, "step"), text(o, "uri"), text(o, "time"), metrics(o.get("metrics")));
          case Resume.NAME ->
              new Resume(
                  integer(o, "step"),
                  text(o, "uri"),
                  text(o, "time"),
                  metrics(o.get("metrics")),
                  skipped(o.get("skipped")));
          case Warning.NAME ->
              new Warning(
                  text(o, "reason"),
                  integer(o, "step"),
                  integer(o, "consecutiveFailures"),
                  integer(o, "lastCheckpointStep"),
                  text(o, "message"));
          case Preempted.NAME -> new Preempted(integer(o, "step"));
          case Done.NAME ->
              new Done(
                  integer(o, "steps"),
                  o.path("stoppedEarly").isBoolean() ? o.get("stoppedEarly").asBoolean() : null,
                  text(o, "output"),
                  topLevelMetrics(o, "event", "steps", "stoppedEarly", "output"));
          default -> new Unknown(name, trimmed);
        };
    return Optional.of(event);
  }

  /** The events of a log tail (or of any text), oldest first; other lines are skipped. */
  static List<TrainerEvent> parseLog(String logTail) {
    List<TrainerEvent> events = new ArrayList<>();
    if (logTail == null) {
      return events;
    }
    for (String line : logTail.split("\n")) {
      parse(line).ifPresent(events::add);
    }
    return events;
  }

  /** The last event of type {@code type} in {@code events}, if any. */
  static <T extends TrainerEvent> Optional<T> last(List<TrainerEvent> events, Class<T> type) {
    T found = null;
    for (TrainerEvent e : events) {
      if (type.isInstance(e)) {
        found = type.cast(e);
      }
    }
    return Optional.ofNullable(found);
  }

  /** Shared Jackson mapper; a holder because interface fields are public. */
  final class Codec {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Codec() {}
  }

  private static <K, V> Map<K, V> unmodifiable(Map<K, V> map) {
    return java.util.Collections.unmodifiableMap(new LinkedHashMap<>(map));
  }

  private static void putText(ObjectNode o, String field, String value) {
    if (value != null) {
      o.put(field, value);
    }
  }

  private static void putNumber(ObjectNode o, String field, Number value) {
    if (value == null) {
      return;
    }
    if (value instanceof Double d) {
      if (Double.isFinite(d)) {
        o.put(field, d);
      } else {
        o.put(field, d.toString()); // JSON has no NaN/Infinity
      }
    } else {
      o.put(field, value.longValue());
    }
  }

  private static void putMetrics(ObjectNode o, Map<String, Double> metrics) {
    if (!metrics.isEmpty()) {
      ObjectNode m = o.putObject("metrics");
      metrics.forEach((k, v) -> putNumber(m, k, v));
    }
  }

  private static String text(JsonNode o, String field) {
    JsonNode v = o.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }

  private static Long integer(JsonNode o, String field) {
    JsonNode v = o.get(field);
    return v != null && v.isNumber() && v.canConvertToLong() ? v.asLong() : null;
  }

  /** A number, or a non-finite one written as a string; null otherwise. */
  private static Double number(JsonNode o, String field) {
    return number(o.get(field));
  }

  private static Double number(JsonNode v) {
    if (v == null) {
      return null;
    }
    if (v.isNumber()) {
      return v.asDouble();
    }
    if (v.isTextual()) {
      return switch (v.asText()) {
        case "NaN" -> Double.NaN;
        case "Infinity" -> Double.POSITIVE_INFINITY;
        case "-Infinity" -> Double.NEGATIVE_INFINITY;
        default -> null;
      };
    }
    return null;
  }

  private static List<String> texts(JsonNode v) {
    if (v == null || !v.isArray()) {
      return null;
    }
    List<String> list = new ArrayList<>();
    v.forEach(e -> list.add(e.asText()));
    return List.copyOf(list);
  }

  private static Map<String, Double> metrics(JsonNode v) {
    Map<String, Double> metrics = new LinkedHashMap<>();
    if (v != null && v.isObject()) {
      v.fields()
          .forEachRemaining(
              e -> {
                Double d = number(e.getValue());
                if (d != null) {
                  metrics.put(e.getKey(), d);
                }
              });
    }
    return metrics;
  }

  private static Map<String, Double> topLevelMetrics(JsonNode o, String... notMetrics) {
    Map<String, Double> metrics = new LinkedHashMap<>();
    Iterator<Map.Entry<String, JsonNode>> fields = o.fields();
    outer:
    while (fields.hasNext()) {
      Map.Entry<String, JsonNode> e = fields.next();
      for (String skip : notMetrics) {
        if (skip.equals(e.getKey())) {
          continue outer;
        }
      }
      Double d = number(e.getValue());
      if (d != null) {
        metrics.put(e.getKey(), d);
      }
    }
    return metrics;
  }

  private static List<Skipped> skipped(JsonNode v) {
    List<Skipped> list = new ArrayList<>();
    if (v != null && v.isArray()) {
      for (JsonNode s : v) {
        if (s.isObject()) {
          list.add(new Skipped(integer(s, "step"), text(s, "uri"), text(s, "reason")));
        }
      }
    }
    return list;
  }
}
