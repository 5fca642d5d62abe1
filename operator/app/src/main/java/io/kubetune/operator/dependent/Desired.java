package io.kubetune.operator.dependent;

import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.operator.model.FineTuneJobModel;
import io.kubetune.operator.serving.ServingOutcome;

/**
 * What the controller resolved and decided in this reconcile, handed to the dependents through
 * JOSDK's per-reconcile context: the dependents compute nothing of their own, they only read the
 * model (and the serving decision) and ask its builders for the desired object.
 */
public final class Desired {
  private static final String MODEL = FineTuneJobModel.class.getName();
  private static final String SERVING = ServingOutcome.class.getName();

  private Desired() {}

  public static void model(Context<FineTuneJob> context, FineTuneJobModel model) {
    context.managedWorkflowAndDependentResourceContext().put(MODEL, model);
  }

  public static void serving(Context<FineTuneJob> context, ServingOutcome outcome) {
    context.managedWorkflowAndDependentResourceContext().put(SERVING, outcome);
  }

  static FineTuneJobModel model(Context<FineTuneJob> context) {
    return context
        .managedWorkflowAndDependentResourceContext()
        .getMandatory(MODEL, FineTuneJobModel.class);
  }

  static ServingOutcome serving(Context<FineTuneJob> context) {
    return context
        .managedWorkflowAndDependentResourceContext()
        .getMandatory(SERVING, ServingOutcome.class);
  }
}
