package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.Service;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.processing.dependent.Matcher;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.Names;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.ServingModel;
import java.util.Objects;

/**
 * The serving Service in front of the Deployment's pods. Compared on what the operator sets
 * (selector, ports, labels): the API server fills in cluster IPs and defaults that must not count
 * as drift. Deleted when serving is turned off.
 */
public class ServingServiceDependent extends ServingDependent<Service> {
  public static final String NAME = "services";

  public ServingServiceDependent(FineTuneJobMetrics metrics) {
    super(Service.class, NAME, Names::servingService, metrics);
  }

  @Override
  protected Service desired(FineTuneJob primary, Context<FineTuneJob> context) {
    return ServingModel.service(Desired.model(context));
  }

  @Override
  public Matcher.Result<Service> match(
      Service actual, Service desired, FineTuneJob primary, Context<FineTuneJob> context) {
    boolean same =
        Objects.equals(actual.getSpec().getSelector(), desired.getSpec().getSelector())
            && Objects.equals(actual.getSpec().getPorts(), desired.getSpec().getPorts())
            && OwnedInformers.containsAll(
                actual.getMetadata().getLabels(), desired.getMetadata().getLabels());
    return Matcher.Result.computed(same, desired);
  }
}
