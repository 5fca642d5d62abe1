package io.kubetune.operator.serving;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.serving.VariantsReport;
import io.kubetune.operator.model.ServingModel;
import java.util.List;

/**
 * What the ready pods of a serving Deployment report about their variants ({@code GET
 * /v1/variants}), one report per pod that answered. A pod that cannot be reached is left out, never
 * an error: the canary is then decided on what the others (or the last status) said.
 */
@FunctionalInterface
public interface ServingFacts {
  List<VariantsReport> variants(KubernetesClient client, Deployment deployment);

  /** Asks the pods only while {@code deployment} serves a canary; else nothing. */
  default List<VariantsReport> duringCanary(KubernetesClient client, Deployment deployment) {
    return deployment == null || ServingModel.canaryOf(deployment) == null
        ? List.of()
        : variants(client, deployment);
  }
}
