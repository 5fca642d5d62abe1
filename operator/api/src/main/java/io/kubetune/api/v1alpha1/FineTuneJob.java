package io.kubetune.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Kind;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Singular;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * A fine-tuning run: base model + dataset + method, trained by the KubeTune trainer image in a
 * batch/v1 Job, optionally served afterwards.
 */
@Group(FineTuneJob.GROUP)
@Version(FineTuneJob.VERSION)
@Kind(FineTuneJob.KIND)
@Plural("finetunejobs")
@Singular("finetunejob")
@ShortNames("ftj")
@AdditionalPrinterColumn(
    name = "Phase",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".status.phase")
@AdditionalPrinterColumn(
    name = "Progress",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".status.progress.summary")
@AdditionalPrinterColumn(
    name = "Loss",
    type = AdditionalPrinterColumn.Type.NUMBER,
    jsonPath = ".status.progress.loss")
@AdditionalPrinterColumn(
    name = "Age",
    type = AdditionalPrinterColumn.Type.DATE,
    jsonPath = ".metadata.creationTimestamp")
@AdditionalPrinterColumn(
    name = "Method",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".spec.method.type",
    priority = 1)
@AdditionalPrinterColumn(
    name = "ETA",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".status.progress.eta",
    priority = 1)
@AdditionalPrinterColumn(
    name = "Job",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".status.jobName",
    priority = 1)
@AdditionalPrinterColumn(
    name = "Endpoint",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".status.serving.endpoint",
    priority = 1)
@AdditionalPrinterColumn(
    name = "Message",
    type = AdditionalPrinterColumn.Type.STRING,
    jsonPath = ".status.message",
    priority = 1)
public class FineTuneJob extends CustomResource<FineTuneJobSpec, FineTuneJobStatus>
    implements Namespaced {

  public static final String GROUP = "kubetune.io";
  public static final String VERSION = "v1alpha1";
  public static final String KIND = "FineTuneJob";
  public static final String API_VERSION = GROUP + "/" + VERSION;

  @Override
  protected FineTuneJobStatus initStatus() {
    return new FineTuneJobStatus();
  }
}
