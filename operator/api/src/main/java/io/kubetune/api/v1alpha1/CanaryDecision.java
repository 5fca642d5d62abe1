package io.kubetune.api.v1alpha1;

/** Where a canary stands (status.serving.canary.decision). */
public enum CanaryDecision {
  /** Both adapters are served; the canary's share of requests is being observed. */
  Observing,
  /** The canary passed: it became the served adapter. */
  Promoted,
  /**
   * The canary failed (error rate, or its pods never became ready): the previous adapter serves.
   */
  RolledBack
}
