package io.kubetune.api.v1alpha1;

/** The summary phase shown by kubectl get; conditions carry the detail. */
public enum Phase {
  /** Accepted, nothing created yet. */
  Pending,
  /** The spec is being checked. */
  Validating,
  /** The training Job exists but no pod runs yet (scheduling, image pull, Kueue admission). */
  Queued,
  /** A trainer pod is running. */
  Running,
  /** Training finished and the result was exported. */
  Succeeded,
  /** Training failed, or the spec is invalid; see the Failed/Validated conditions. */
  Failed,
  /** spec.suspend is true and no trainer pod runs. */
  Suspended,
  /** Training succeeded and the tuned adapter is being served (serving.enabled). */
  Serving;

  public boolean isTerminal() {
    return this == Succeeded || this == Failed || this == Serving;
  }
}
