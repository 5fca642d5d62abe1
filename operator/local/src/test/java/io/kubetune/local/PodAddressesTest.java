package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.List;
import org.junit.jupiter.api.Test;

class PodAddressesTest {
  @Test
  void serveListensOnThePodIp() {
    assertThat(PodAddresses.withHost(List.of("serve", "--port", "8000"), "127.0.9.9"))
        .containsExactly("serve", "--port", "8000", "--host", "127.0.9.9");
    assertThat(PodAddresses.withHost(List.of("serve", "--host", "0.0.0.0"), "127.0.9.9"))
        .containsExactly("serve", "--host", "127.0.9.9");
    assertThat(PodAddresses.withHost(List.of("train", "--config", "/etc/x"), "127.0.9.9"))
        .containsExactly("train", "--config", "/etc/x");
  }

  @Test
  void eachPodGetsItsOwnLoopbackAddressWithItsPortsFree() throws Exception {
    Container server =
        new ContainerBuilder()
            .withName("server")
            .addNewPort()
            .withContainerPort(8000)
            .endPort()
            .build();
    PodAddresses addresses = new PodAddresses();
    String first = addresses.allocate(server);
    assertThat(first).startsWith("127.0.").isNotEqualTo("127.0.0.1");
    // The first pod listens on its port 8000; the second gets another address, same port.
    try (ServerSocket listening = new ServerSocket()) {
      listening.bind(new InetSocketAddress(InetAddress.getByName(first), 8000));
      String second = addresses.allocate(server);
      assertThat(second).isNotEqualTo(first);
      try (ServerSocket alsoListening = new ServerSocket()) {
        alsoListening.bind(new InetSocketAddress(InetAddress.getByName(second), 8000));
      }
    }
  }
}
