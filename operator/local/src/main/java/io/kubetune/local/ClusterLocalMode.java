package io.kubetune.local;

import io.fabric8.kubernetes.api.model.DeletionPropagation;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.local.cluster.ClusterCommand;
import io.kubetune.local.cluster.ControlPlane;
import io.kubetune.local.cluster.ControlPlaneBinaries;
import io.kubetune.local.cluster.RealClusterSetup;
import io.kubetune.operator.Names;
import io.kubetune.operator.model.OperatorSettings;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * {@code ./kubetune local --cluster FILE.yaml}: local mode on the real control plane of {@code
 * ./kubetune cluster} (started if needed). The operator runs in this process as its ServiceAccount
 * (the shipped RBAC is enforced), Kubernetes' own Job and Deployment controllers create the pods,
 * and the {@link LocalKubelet} binds and runs them as local processes. The control plane keeps
 * running afterwards, so kubectl sees the FineTuneJob, its Job, pods and logs.
 */
public final class ClusterLocalMode {
  static final String OPERATOR_USER_AGENT = "kubetune-operator-local";

  private ClusterLocalMode() {}

  /** What a test checks once the FineTuneJob is done, before the operator and the node stop. */
  @FunctionalInterface
  public interface WhileUp {
    void run(FineTuneJob done) throws Exception;
  }

  /** The command: the control plane in .kubetune/cluster/, this machine's node, all namespaces. */
  static KubeTuneLocal.Result main(KubeTuneLocal.Options options, PrintStream out, boolean tty)
      throws Exception {
    Path root = options.repoRoot();
    ControlPlane controlPlane = ClusterCommand.ensureRunning(root, out);
    String kubectl =
        "KUBECONFIG="
            + root.relativize(root.resolve(".kubetune/kubeconfig"))
            + " "
            + ControlPlaneBinaries.locate(root).resolve("kubectl");
    KubeTuneLocal.Result result =
        run(
            options,
            controlPlane,
            LocalKubelet.DEFAULT_NODE_NAME,
            ns -> true,
            kubectl,
            out,
            tty,
            null);
    out.println();
    out.println(
        "The control plane keeps running (./kubetune cluster stop ends it): the FineTuneJob, its"
            + " Job and pods stay for kubectl. The node "
            + LocalKubelet.DEFAULT_NODE_NAME
            + " stops with this command: its pods are terminated, and kubectl logs works only while"
            + " ./kubetune local --cluster runs (--keep-serving keeps it up until Ctrl-C).");
    return result;
  }

  /**
   * Runs one FineTuneJob on {@code controlPlane} until it is done (as {@link KubeTuneLocal#run}
   * does on the mock), with a {@link LocalKubelet} named {@code nodeName} that takes the pods of
   * {@code podNamespaces}.
   *
   * @param kubectl how to call kubectl for this control plane, for the hints printed; or null
   * @param whileUp (tests) runs once the FineTuneJob is done, while the operator and the node still
   *     run; or null
   */
  public static KubeTuneLocal.Result run(
      KubeTuneLocal.Options options,
      ControlPlane controlPlane,
      String nodeName,
      Predicate<String> podNamespaces,
      String kubectl,
      PrintStream out,
      boolean interactive,
      WhileUp whileUp)
      throws Exception {
    FineTuneJob job = KubeTuneLocal.prepareJob(options, out);
    if (job == null) {
      return new KubeTuneLocal.Result(2, null, null);
    }
    Path root = options.repoRoot();
    Path state = options.stateDir();
    String name = job.getMetadata().getName();
    String namespace = job.getMetadata().getNamespace();
    Map<String, Path> claims = KubeTuneLocal.claimFolders(root);

    out.println(
        "KubeTune local mode on a real control plane (kube-apiserver, kube-controller-manager;"
            + " a local kubelet runs the pods)");
    out.println("  FineTuneJob  " + options.file());
    out.println("  state        " + state);
    out.println("  API server   " + controlPlane.server());
    ProgressView progress = new ProgressView(out, interactive);
    Instant started = Instant.now();
    EmbeddedObjectStore s3 = KubeTuneLocal.startObjectStoreIfNeeded(job, root, state, out);
    try (s3;
        KubernetesClient admin = controlPlane.adminClient();
        KubernetesClient operatorClient =
            RealClusterSetup.operatorClient(controlPlane, OPERATOR_USER_AGENT);
        LocalKubelet kubelet =
            new LocalKubelet(
                admin,
                controlPlane.kubeletServerTls(),
                nodeName,
                podNamespaces,
                state,
                claims,
                root.resolve(KubeTuneLocal.TRAINER_LAUNCHER),
                progress)) {
      RealClusterSetup.enforceRestricted(admin, namespace);
      if (s3 != null) {
        admin
            .resource(
                new SecretBuilder()
                    .withNewMetadata()
                    .withName(job.getSpec().storage.credentialsSecret)
                    .withNamespace(namespace)
                    .endMetadata()
                    .addToStringData("AWS_ACCESS_KEY_ID", EmbeddedObjectStore.ACCESS_KEY)
                    .addToStringData("AWS_SECRET_ACCESS_KEY", EmbeddedObjectStore.SECRET_KEY)
                    .build())
            .fieldManager(RealClusterSetup.FIELD_MANAGER)
            .forceConflicts()
            .serverSideApply();
      }
      // The operator as its ServiceAccount, with production's write path.
      Operator operator =
          RealClusterSetup.startOperator(
              operatorClient, OperatorSettings.defaults(), new SimpleMeterRegistry());
      // Ctrl-C (e.g. with --keep-serving): the node still stops its processes and pods.
      Runtime.getRuntime().addShutdownHook(new Thread(kubelet::close));
      kubelet.start();
      out.println("  node         " + nodeName + " (this machine; pods run as local processes)");
      replaceEarlierRun(admin, job, out);
      KubeTuneLocal.takeOverOwnCheckpoints(job, claims, state, s3, out);
      admin.resource(job).create();
      out.println("applied finetunejob/" + name + " in namespace " + namespace);
      if (kubectl != null) {
        String ns = "default".equals(namespace) ? "" : " -n " + namespace;
        out.println("  from another shell:");
        out.println("    " + kubectl + " get ftj" + ns + " -w");
        out.println("    " + kubectl + " describe ftj" + ns + " " + name);
        out.println("    " + kubectl + " logs" + ns + " -f job/" + Names.trainingJob(job));
        out.println("    " + kubectl + " wait" + ns + " --for=condition=Complete ftj/" + name);
      }

      FineTuneJob current =
          KubeTuneLocal.awaitOutcome(
              admin, job, progress, out, interactive, kubelet::fatalError, () -> null);
      boolean served = KubeTuneLocal.isServing(current);
      String exampleResponse =
          served
              ? ServingExample.run(
                  current,
                  kubelet.endpointOf(namespace, Names.servingService(current)),
                  claims,
                  root,
                  out)
              : null;
      // While it serves, a retrain (kubectl patch ... restartNonce) rolls out as a canary: show it.
      try (CanaryProgress canaries =
          served ? CanaryProgress.start(admin, namespace, name, out) : null) {
        if (whileUp != null) {
          whileUp.run(current);
        }
        if (served && options.keepServing()) {
          out.println();
          out.println(
              "serving at "
                  + kubelet.endpointOf(namespace, Names.servingService(current)).orElse("?")
                  + " until Ctrl-C (the operator keeps reconciling)");
          Thread.currentThread().join();
        }
      }
      operator.stop();
      return KubeTuneLocal.finish(
          job, current, claims, state, s3, progress, out, started, served, exampleResponse);
    }
  }

  /**
   * A FineTuneJob of this name left by an earlier run: deleted, with its Job, pods and serving
   * (foreground: the garbage collector removes the children first), before the new one is created.
   */
  private static void replaceEarlierRun(KubernetesClient admin, FineTuneJob job, PrintStream out) {
    var resource =
        admin
            .resources(FineTuneJob.class)
            .inNamespace(job.getMetadata().getNamespace())
            .withName(job.getMetadata().getName());
    if (resource.get() == null) {
      return;
    }
    out.println(
        "deleting finetunejob/"
            + job.getMetadata().getName()
            + " of an earlier run (and, by garbage collection, its Job, pods and serving)");
    resource.withPropagationPolicy(DeletionPropagation.FOREGROUND).delete();
    resource.waitUntilCondition(Objects::isNull, 3, TimeUnit.MINUTES);
  }
}
