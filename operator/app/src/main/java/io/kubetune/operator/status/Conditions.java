package io.kubetune.operator.status;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** Condition handling per the Kubernetes API conventions. */
public final class Conditions {
  public static final String VALIDATED = "Validated";
  public static final String RUNNING = "Running";
  public static final String COMPLETE = "Complete";
  public static final String FAILED = "Failed";
  public static final String PROMOTED = "Promoted";
  public static final String SERVING = "Serving";
  public static final String READY = "Ready";

  /**
   * True while reconciles of this FineTuneJob fail with an exception (the message says which); the
   * next successful reconcile removes it.
   */
  public static final String RECONCILE_ERROR = "ReconcileError";

  /** The order conditions appear in status, so that status diffs stay small. */
  static final List<String> ORDER =
      List.of(VALIDATED, RUNNING, COMPLETE, FAILED, PROMOTED, READY, RECONCILE_ERROR);

  private Conditions() {}

  /**
   * Returns {@code conditions} with {@code type} set. lastTransitionTime only moves when the status
   * value flips, as kubectl wait and humans expect.
   */
  public static List<Condition> set(
      List<Condition> conditions,
      String type,
      boolean status,
      String reason,
      String message,
      Long generation,
      String now) {
    List<Condition> result = new ArrayList<>(conditions == null ? List.of() : conditions);
    String value = status ? "True" : "False";
    Condition previous = find(result, type);
    String transition =
        previous != null && value.equals(previous.getStatus())
            ? previous.getLastTransitionTime()
            : now;
    Condition updated =
        new ConditionBuilder()
            .withType(type)
            .withStatus(value)
            .withReason(reason)
            .withMessage(message == null ? "" : message)
            .withObservedGeneration(generation)
            .withLastTransitionTime(transition)
            .build();
    result.removeIf(c -> type.equals(c.getType()));
    result.add(updated);
    result.sort((a, b) -> Integer.compare(orderOf(a.getType()), orderOf(b.getType())));
    return result;
  }

  /** Returns {@code conditions} without {@code type}. */
  public static List<Condition> remove(List<Condition> conditions, String type) {
    List<Condition> result = new ArrayList<>(conditions == null ? List.of() : conditions);
    result.removeIf(c -> type.equals(c.getType()));
    return result;
  }

  public static Condition find(List<Condition> conditions, String type) {
    if (conditions == null) {
      return null;
    }
    return conditions.stream().filter(c -> type.equals(c.getType())).findFirst().orElse(null);
  }

  public static boolean isTrue(List<Condition> conditions, String type) {
    Condition c = find(conditions, type);
    return c != null && Objects.equals(c.getStatus(), "True");
  }

  public static java.util.Optional<String> findMessage(List<Condition> conditions, String type) {
    return java.util.Optional.ofNullable(find(conditions, type)).map(Condition::getMessage);
  }

  private static int orderOf(String type) {
    int i = ORDER.indexOf(type);
    return i < 0 ? ORDER.size() : i;
  }
}
