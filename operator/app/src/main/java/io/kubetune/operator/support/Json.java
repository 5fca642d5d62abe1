package io.kubetune.operator.support;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

/** One deterministic JSON mapper for rendered documents and fingerprints. */
public final class Json {
  private static final ObjectMapper CANONICAL =
      new ObjectMapper()
          .setSerializationInclusion(JsonInclude.Include.NON_NULL)
          .configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

  private static final ObjectMapper PRETTY =
      CANONICAL.copy().enable(SerializationFeature.INDENT_OUTPUT);

  private Json() {}

  public static String canonical(Object value) {
    try {
      return CANONICAL.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise " + value.getClass(), e);
    }
  }

  public static String pretty(Object value) {
    try {
      return PRETTY.writeValueAsString(value) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise " + value.getClass(), e);
    }
  }

  /** Deep copy through JSON, so builders never mutate the custom resource they read. */
  public static <T> T copy(T value, Class<T> type) {
    return value == null ? null : CANONICAL.convertValue(value, type);
  }

  public static ObjectMapper mapper() {
    return CANONICAL;
  }
}
