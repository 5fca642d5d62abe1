package io.kubetune.local;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeStatusBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.lang.management.ManagementFactory;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;

/**
 * The Node object of a {@link LocalKubelet}: registered Ready with this machine's capacity, its
 * address and the kubelet port the API server calls for pods/log; marked NotReady when the agent
 * stops. There is no heartbeat: no node lifecycle controller runs to need one.
 */
final class KubeletNode {
  private KubeletNode() {}

  static void register(KubernetesClient client, String nodeName, String address, int kubeletPort) {
    int cpus = Runtime.getRuntime().availableProcessors();
    long memory =
        ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
            .getTotalMemorySize();
    Map<String, Quantity> capacity =
        Map.of(
            "cpu", new Quantity(Integer.toString(cpus)),
            "memory", new Quantity(Long.toString(memory)),
            "pods", new Quantity("110"));
    Node node =
        new NodeBuilder()
            .withNewMetadata()
            .withName(nodeName)
            .addToLabels("kubernetes.io/hostname", nodeName)
            .addToLabels("kubernetes.io/os", "linux")
            .addToLabels("node.kubernetes.io/instance-type", "kubetune-local")
            .endMetadata()
            .withNewSpec()
            .endSpec()
            .build();
    client.nodes().resource(node).fieldManager(nodeName).forceConflicts().serverSideApply();
    Node current = client.nodes().withName(nodeName).get();
    current.setStatus(
        new NodeStatusBuilder()
            .addNewCondition()
            .withType("Ready")
            .withStatus("True")
            .withReason("KubeletReady")
            .withMessage("kubetune local kubelet is posting ready status")
            .withLastHeartbeatTime(now())
            .withLastTransitionTime(now())
            .endCondition()
            .addNewAddress()
            .withType("InternalIP")
            .withAddress(address)
            .endAddress()
            .addNewAddress()
            .withType("Hostname")
            .withAddress(nodeName)
            .endAddress()
            .withNewDaemonEndpoints()
            .withNewKubeletEndpoint()
            .withPort(kubeletPort)
            .endKubeletEndpoint()
            .endDaemonEndpoints()
            .withCapacity(capacity)
            .withAllocatable(capacity)
            .withNewNodeInfo()
            .withArchitecture(System.getProperty("os.arch"))
            .withOperatingSystem("linux")
            .withOsImage(System.getProperty("os.name") + " " + System.getProperty("os.version"))
            .withKernelVersion(System.getProperty("os.version"))
            .withKubeletVersion("kubetune-local")
            .withKubeProxyVersion("")
            .withContainerRuntimeVersion("local-process://java-" + Runtime.version())
            .withMachineID("")
            .withSystemUUID("")
            .withBootID("")
            .endNodeInfo()
            .build());
    client.nodes().resource(current).updateStatus();
  }

  /** Ready=False with reason KubeletStopped; nothing when the control plane is gone too. */
  static void markNotReady(KubernetesClient client, String nodeName) {
    try {
      Node node = client.nodes().withName(nodeName).get();
      if (node != null && node.getStatus() != null) {
        node.getStatus().getConditions().stream()
            .filter(c -> "Ready".equals(c.getType()))
            .forEach(
                c -> {
                  c.setStatus("False");
                  c.setReason("KubeletStopped");
                  c.setMessage("the local kubelet stopped; its processes are gone");
                  c.setLastTransitionTime(now());
                });
        client.nodes().resource(node).updateStatus();
      }
    } catch (KubernetesClientException e) {
      // the control plane is gone too
    }
  }

  private static String now() {
    return Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
  }
}
