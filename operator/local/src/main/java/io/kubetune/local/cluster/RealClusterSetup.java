package io.kubetune.local.cluster;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.kubetune.operator.reconciler.FineTuneJobReconciler;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What an administrator does to a fresh cluster before KubeTune runs on it, done the way the README
 * says: the CRD from crds/ and manifests/namespace.yaml and manifests/rbac.yaml, all by server-side
 * apply; namespaces for FineTuneJobs labelled to enforce the "restricted" Pod Security Standard;
 * and a client for the operator that holds a token of its ServiceAccount, so the shipped RBAC is
 * what the API server enforces.
 */
public final class RealClusterSetup {
  public static final String FIELD_MANAGER = "kubetune-setup";
  public static final String CRD_FILE = "crds/finetunejobs.kubetune.io-v1.yml";
  public static final String OPERATOR_NAMESPACE = "kubetune-system";
  public static final String OPERATOR_SERVICE_ACCOUNT = "kubetune-operator";

  private RealClusterSetup() {}

  /** The CRD, the operator's namespace and RBAC, and the default namespace labelled restricted. */
  public static void prepare(ControlPlane controlPlane, Path repoRoot) throws IOException {
    try (KubernetesClient admin = controlPlane.adminClient()) {
      installCrd(admin, repoRoot);
      applyManifests(admin, repoRoot, List.of("manifests/namespace.yaml", "manifests/rbac.yaml"));
      enforceRestricted(admin, "default");
    }
  }

  public static CustomResourceDefinition committedCrd(KubernetesClient client, Path repoRoot)
      throws IOException {
    try (InputStream in = Files.newInputStream(repoRoot.resolve(CRD_FILE))) {
      return client.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class);
    }
  }

  /**
   * Installs the CRD with server-side apply, as {@code kubectl apply --server-side -k crds/}, and
   * waits until the CRD is Established. (Not {@code -f crds/}: kubectl then also tries to apply
   * crds/kustomization.yaml and fails.)
   */
  public static void installCrd(KubernetesClient admin, Path repoRoot) throws IOException {
    CustomResourceDefinition crd = committedCrd(admin, repoRoot);
    admin.resource(crd).fieldManager(FIELD_MANAGER).forceConflicts().serverSideApply();
    admin
        .apiextensions()
        .v1()
        .customResourceDefinitions()
        .withName(crd.getMetadata().getName())
        .waitUntilCondition(
            c ->
                c != null
                    && c.getStatus() != null
                    // a just-applied CRD has a status with no conditions yet
                    && c.getStatus().getConditions() != null
                    && c.getStatus().getConditions().stream()
                        .anyMatch(
                            cond ->
                                "Established".equals(cond.getType())
                                    && "True".equals(cond.getStatus())),
            60,
            TimeUnit.SECONDS);
  }

  /** Every object of the given multi-document YAML files, by server-side apply. */
  public static void applyManifests(KubernetesClient admin, Path repoRoot, List<String> files)
      throws IOException {
    for (String file : files) {
      try (InputStream in = Files.newInputStream(repoRoot.resolve(file))) {
        for (HasMetadata item : admin.load(in).items()) {
          admin.resource(item).fieldManager(FIELD_MANAGER).forceConflicts().serverSideApply();
        }
      }
    }
  }

  /**
   * Labels (creating it if needed) a namespace to enforce the "restricted" Pod Security Standard.
   */
  public static void enforceRestricted(KubernetesClient admin, String namespace) {
    admin
        .resource(
            new NamespaceBuilder()
                .withNewMetadata()
                .withName(namespace)
                .addToLabels("pod-security.kubernetes.io/enforce", "restricted")
                .addToLabels("pod-security.kubernetes.io/enforce-version", "latest")
                .endMetadata()
                .build())
        .fieldManager(FIELD_MANAGER)
        .forceConflicts()
        .serverSideApply();
  }

  /** A bound token of the operator's ServiceAccount, from the TokenRequest API. */
  public static String operatorToken(KubernetesClient admin, long expirationSeconds) {
    return admin
        .serviceAccounts()
        .inNamespace(OPERATOR_NAMESPACE)
        .withName(OPERATOR_SERVICE_ACCOUNT)
        .tokenRequest(
            new TokenRequestBuilder()
                .withNewSpec()
                .withAudiences(ControlPlane.ISSUER)
                .withExpirationSeconds(expirationSeconds)
                .endSpec()
                .build())
        .getStatus()
        .getToken();
  }

  /** operator/app's switch for server-side apply (QOSDK applies it to every JOSDK write). */
  public static final String ENABLE_SSA = "quarkus.operator-sdk.enable-ssa";

  /**
   * Starts the operator (plain JOSDK, without the Quarkus wiring) with production's write path:
   * server-side apply as {@link #productionUsesServerSideApply()} says, for the primary's status
   * and for dependents alike (QOSDK maps {@code quarkus.operator-sdk.enable-ssa} to both).
   */
  public static Operator startOperator(
      KubernetesClient client, OperatorSettings settings, MeterRegistry meters) {
    boolean ssa = productionUsesServerSideApply();
    Operator operator =
        new Operator(
            o ->
                o.withKubernetesClient(client)
                    .withUseSSAToPatchPrimaryResource(ssa)
                    .withSSABasedCreateUpdateMatchForDependentResources(ssa)
                    .withCloseClientOnStop(false));
    operator.register(new FineTuneJobReconciler(settings, new FineTuneJobMetrics(meters)));
    operator.start();
    return operator;
  }

  /**
   * Whether the production operator writes with server-side apply: {@value #ENABLE_SSA} in
   * operator/app's application.properties (QOSDK's default, true, when it is not set). Read from
   * there so that the tests on a real API server always run the path production runs.
   */
  public static boolean productionUsesServerSideApply() {
    try {
      var resources =
          FineTuneJobReconciler.class.getClassLoader().getResources("application.properties");
      while (resources.hasMoreElements()) {
        java.util.Properties properties = new java.util.Properties();
        try (InputStream in = resources.nextElement().openStream()) {
          properties.load(in);
        }
        if (properties.stringPropertyNames().stream()
            .anyMatch(k -> k.startsWith("quarkus.operator-sdk."))) {
          return Boolean.parseBoolean(properties.getProperty(ENABLE_SSA, "true").strip());
        }
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    throw new IllegalStateException(
        "operator/app's application.properties (quarkus.operator-sdk.*) is not on the classpath");
  }

  /** A client that acts as the operator's ServiceAccount, with user agent {@code userAgent}. */
  public static KubernetesClient operatorClient(ControlPlane controlPlane, String userAgent) {
    try (KubernetesClient admin = controlPlane.adminClient()) {
      return controlPlane.tokenClient(operatorToken(admin, 24 * 3600), userAgent);
    }
  }
}
