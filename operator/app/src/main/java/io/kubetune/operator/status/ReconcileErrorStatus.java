package io.kubetune.operator.status;

import io.kubetune.api.InvalidFieldException;
import io.kubetune.api.v1alpha1.FineTuneJobStatus;
import io.kubetune.api.v1alpha1.Phase;
import io.kubetune.operator.support.Json;

/**
 * The status of a FineTuneJob whose reconcile threw: never left empty. Bad input that only showed
 * up while building children (an {@link InvalidFieldException}) becomes {@code Validated=False}
 * with the field; anything else a {@code ReconcileError} condition with the message. Pure: the
 * reconciler writes the result and records the Warning Event.
 */
public final class ReconcileErrorStatus {
  public static final String REASON_INVALID = "InvalidSpec";
  public static final String REASON_ERROR = "ReconcileError";

  private ReconcileErrorStatus() {}

  public static FineTuneJobStatus of(
      FineTuneJobStatus previous, Exception error, Long generation, String now) {
    FineTuneJobStatus status =
        previous == null ? new FineTuneJobStatus() : Json.copy(previous, FineTuneJobStatus.class);
    status.observedGeneration = generation;
    InvalidFieldException invalid = invalidField(error);
    if (invalid != null) {
      String message = truncate(invalid.getMessage());
      status.conditions =
          Conditions.set(
              status.conditions,
              Conditions.VALIDATED,
              false,
              REASON_INVALID,
              message,
              generation,
              now);
      if (status.phase == null || status.phase == Phase.Pending) {
        status.phase = Phase.Failed;
      }
      status.message = truncate("invalid spec: " + message);
      return status;
    }
    String message = truncate(describe(error));
    status.conditions =
        Conditions.set(
            status.conditions,
            Conditions.RECONCILE_ERROR,
            true,
            REASON_ERROR,
            message,
            generation,
            now);
    if (status.phase == null) {
      status.phase = Phase.Pending;
    }
    status.message = truncate("reconcile failed (retrying): " + message);
    return status;
  }

  /** One line: the exception's simple class name and message, and its root cause's. */
  static String describe(Throwable error) {
    StringBuilder text = new StringBuilder(oneLine(error));
    Throwable root = error;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    if (root != error) {
      text.append(" (cause: ").append(oneLine(root)).append(')');
    }
    return text.toString();
  }

  private static String oneLine(Throwable e) {
    String message = e.getMessage() == null ? "" : ": " + e.getMessage();
    return (e.getClass().getSimpleName() + message).replaceAll("\\s+", " ").strip();
  }

  /** True when {@code error} (or a cause) is bad input rather than a fault. */
  public static boolean isBadInput(Throwable error) {
    return invalidField(error) != null;
  }

  private static InvalidFieldException invalidField(Throwable error) {
    for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof InvalidFieldException invalid) {
        return invalid;
      }
    }
    return null;
  }

  private static String truncate(String message) {
    int max = FineTuneJobStatusAggregator.MAX_MESSAGE;
    return message.length() <= max ? message : message.substring(0, max - 3) + "...";
  }
}
