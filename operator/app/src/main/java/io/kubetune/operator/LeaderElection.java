package io.kubetune.operator;

import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import jakarta.inject.Singleton;

/**
 * Only one operator replica reconciles at a time; the others wait on this Lease (in the operator's
 * own namespace). Active in the prod profile (quarkus.operator-sdk.activate-leader-election-for-
 * profiles), so tests and local runs need no Lease.
 */
@Singleton
public class LeaderElection extends LeaderElectionConfiguration {
  public static final String LEASE_NAME = "kubetune-operator-leader";

  public LeaderElection() {
    super(LEASE_NAME);
  }
}
