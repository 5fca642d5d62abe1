package io.kubetune.local.cluster;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.local.KubeTuneLocal;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One real control plane per test JVM, started on first use and stopped at JVM exit, with the
 * committed CRD, manifests/namespace.yaml and manifests/rbac.yaml installed by server-side apply.
 */
final class RealCluster {
  static final Path ROOT = KubeTuneLocal.repoRoot();
  static final String FIELD_MANAGER = RealClusterSetup.FIELD_MANAGER;
  static final com.fasterxml.jackson.databind.ObjectMapper YAML =
      new com.fasterxml.jackson.databind.ObjectMapper(
          new com.fasterxml.jackson.dataformat.yaml.YAMLFactory());
  private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
      new com.fasterxml.jackson.databind.ObjectMapper();
  private static ControlPlane controlPlane;
  private static KubernetesClient admin;

  private RealCluster() {}

  static synchronized ControlPlane controlPlane() {
    if (controlPlane == null) {
      try {
        Path dir = Files.createTempDirectory("kubetune-controlplane-");
        // Published only once fully prepared: a failed setup must not leave a half-prepared
        // cluster for the next test class to use.
        ControlPlane started = ControlPlane.start(ControlPlaneBinaries.locate(ROOT), dir);
        System.out.printf(
            "control plane %s started in %d ms (state in %s)%n",
            started.server(), started.startupTime().toMillis(), dir);
        Runtime.getRuntime()
            .addShutdownHook(
                new Thread(
                    () -> {
                      started.close();
                      deleteTree(dir);
                    }));
        KubernetesClient startedAdmin = started.adminClient();
        RealClusterSetup.installCrd(startedAdmin, ROOT);
        RealClusterSetup.applyManifests(
            startedAdmin,
            ROOT,
            java.util.List.of("manifests/namespace.yaml", "manifests/rbac.yaml"));
        admin = startedAdmin;
        controlPlane = started;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
    return controlPlane;
  }

  private static void deleteTree(Path dir) {
    try (java.util.stream.Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a temp folder left behind is harmless
    }
  }

  /** An administrator client (group system:masters). */
  static synchronized KubernetesClient admin() {
    controlPlane();
    return admin;
  }

  /**
   * A fresh namespace whose pods must pass the "restricted" Pod Security Standard, as KubeTune's
   * namespaces are labelled.
   */
  static String restrictedNamespace(String prefix) {
    String name = prefix + "-" + Long.toString(System.nanoTime() % 1_000_000_000L, 36);
    admin()
        .namespaces()
        .resource(
            new NamespaceBuilder()
                .withNewMetadata()
                .withName(name)
                .addToLabels("pod-security.kubernetes.io/enforce", "restricted")
                .addToLabels("pod-security.kubernetes.io/enforce-version", "latest")
                .endMetadata()
                .build())
        .create();
    return name;
  }

  /**
   * Requests of the operator (its ServiceAccount, with user agent {@code userAgent}) that the API
   * server answered with 403, from the API server's audit log.
   */
  static java.util.List<String> forbiddenOperatorRequests(String userAgent) throws IOException {
    java.util.List<String> forbidden = new java.util.ArrayList<>();
    for (String line : Files.readAllLines(controlPlane().auditLog())) {
      com.fasterxml.jackson.databind.JsonNode event = JSON.readTree(line);
      if (ControlPlane.OPERATOR_USER.equals(event.path("user").path("username").asText())
          && userAgent.equals(event.path("userAgent").asText())
          && event.path("responseStatus").path("code").asInt() == 403) {
        forbidden.add(event.path("verb").asText() + " " + event.path("requestURI").asText());
      }
    }
    return forbidden;
  }
}
