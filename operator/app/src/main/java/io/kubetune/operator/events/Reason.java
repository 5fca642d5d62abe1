package io.kubetune.operator.events;

/** Every Event reason the operator emits, with its Kubernetes event type. */
public enum Reason {
  InvalidSpec(Type.Warning),
  JobCreated(Type.Normal),
  JobReplaced(Type.Normal),
  Queued(Type.Normal),
  Started(Type.Normal),
  Suspended(Type.Normal),
  Succeeded(Type.Normal),
  Failed(Type.Warning),
  Serving(Type.Normal),
  RolloutFailed(Type.Warning),
  /** A retrained adapter is served as a canary next to the served one. */
  CanaryStarted(Type.Normal),
  /** The canary passed (error rate within serving.canary.maxErrorRate) and is rolled out. */
  CanaryPromoted(Type.Normal),
  /** The canary received no request in serving.canary.duration: promoted on the gate alone. */
  CanaryPromotedUnobserved(Type.Warning),
  /** The canary failed (error rate, or its pods never became ready) or was superseded. */
  CanaryRolledBack(Type.Warning),
  /** The trainer rejected a checkpoint at resume (corrupt, incomplete) and used an older one. */
  CheckpointSkipped(Type.Warning),
  /** A checkpoint could not be written; training went on with the previous one in force. */
  CheckpointFailed(Type.Warning),
  /** A reconcile threw; status carries the message in the ReconcileError condition. */
  ReconcileError(Type.Warning);

  public enum Type {
    Normal,
    Warning
  }

  private final Type type;

  Reason(Type type) {
    this.type = type;
  }

  public Type type() {
    return type;
  }
}
