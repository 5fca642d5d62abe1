package io.kubetune.local;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Pod IPs of a {@link LocalKubelet}: each pod gets a loopback address of its own, so that, as in a
 * pod's network namespace, several serving pods listen on port 8000 at once and are reached at
 * {@code http://<podIP>:8000}. Linux routes all of 127.0.0.0/8 to the loopback interface.
 */
final class PodAddresses {
  private final Set<String> inUse = ConcurrentHashMap.newKeySet();

  /**
   * A loopback address of its own for a pod (its pod IP), where every port the container declares
   * is free. Addresses are drawn at random from 127.0.1.1-127.0.254.254 so that two agents on one
   * machine (a test and a local run) rarely meet, and checked before use.
   */
  String allocate(Container container) throws IOException {
    List<Integer> ports =
        Objects.requireNonNullElse(container.getPorts(), List.<ContainerPort>of()).stream()
            .map(ContainerPort::getContainerPort)
            .toList();
    IOException last = null;
    for (int attempt = 0; attempt < 50; attempt++) {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      String ip = "127.0." + random.nextInt(1, 255) + "." + random.nextInt(1, 255);
      if (!inUse.add(ip)) {
        continue;
      }
      try {
        for (int port : ports) {
          try (ServerSocket socket = new ServerSocket()) {
            socket.bind(new InetSocketAddress(InetAddress.getByName(ip), port));
          }
        }
        return ip;
      } catch (IOException e) {
        inUse.remove(ip);
        last = e;
      }
    }
    throw new IOException(
        "no free loopback address for a pod (ports "
            + ports
            + "); pods get addresses in 127.0.0.0/8, which Linux routes to the loopback interface: "
            + (last == null ? "" : last.getMessage()));
  }

  /**
   * The serving container listens on its pod IP: {@code --host} set to it (the KubeTune image's
   * serve mode listens on 0.0.0.0 by default, which would take the port on every address).
   */
  static List<String> withHost(List<String> args, String podIp) {
    if (args.isEmpty() || !"serve".equals(args.get(0))) {
      return args;
    }
    List<String> out = new ArrayList<>(args);
    int i = out.indexOf("--host");
    if (i >= 0 && i + 1 < out.size()) {
      out.set(i + 1, podIp);
    } else {
      out.add("--host");
      out.add(podIp);
    }
    return out;
  }

  void release(String ip) {
    inUse.remove(ip);
  }
}
