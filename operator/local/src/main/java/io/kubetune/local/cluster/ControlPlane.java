package io.kubetune.local.cluster;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and kube-controller-manager,
 * built from Go modules by {@code operator/local/controlplane/build.sh} (see
 * docs/control-plane.md).
 *
 * <p>Like a real cluster: a generated CA, serving and client certificates and service-account keys;
 * authorization {@code RBAC,Node}; the PodSecurity admission plugin; Kubernetes' own Job,
 * ReplicaSet/Deployment, garbage-collector, namespace and service-account controllers. There is no
 * scheduler and no kubelet. An administrator kubeconfig is written to {@link #kubeconfig()}.
 *
 * <p>All state lives under one folder: {@code pki/}, {@code etcd/}, {@code logs/} and {@code
 * cluster.properties} (ports and process ids), so {@code ./kubetune cluster status|stop} can find a
 * control plane another process started.
 */
public final class ControlPlane implements AutoCloseable {
  /** The service-account issuer and audience of tokens this API server signs. */
  public static final String ISSUER = "https://kubernetes.default.svc.cluster.local";

  /**
   * The controllers kube-controller-manager runs: what KubeTune's resources need, nothing that
   * needs nodes (no pod GC, which would delete pods bound to a node it does not know).
   */
  public static final List<String> CONTROLLERS =
      List.of(
          "job-controller",
          "ttl-after-finished-controller",
          "deployment-controller",
          "replicaset-controller",
          "garbage-collector-controller",
          "namespace-controller",
          "serviceaccount-controller",
          "serviceaccount-token-controller",
          "root-ca-certificate-publisher-controller",
          "endpointslice-controller");

  /**
   * The API server's audit log: one JSON line per request of the operator's ServiceAccount, so
   * tests can show it never got a 403 (see {@link #auditLog()}).
   */
  public static final String AUDIT_LOG = "logs/audit.log";

  public static final String OPERATOR_USER =
      "system:serviceaccount:kubetune-system:kubetune-operator";

  private static final String AUDIT_POLICY =
      """
      apiVersion: audit.k8s.io/v1
      kind: Policy
      omitStages: ["RequestReceived"]
      rules:
      - level: Metadata
        users: ["%s"]
      - level: None
      """
          .formatted(OPERATOR_USER);

  private static final Duration READY_TIMEOUT = Duration.ofMinutes(3);
  private static final String PROPERTIES = "cluster.properties";

  /** Set in cluster.properties by a control plane whose API server can call a kubelet. */
  private static final String KUBELET_CLIENT = "kubeletClient";

  private final Path dir;
  private final int apiPort;
  private final List<ProcessHandle> processes;
  private final Duration startupTime;
  private final boolean kubeletClient;

  private ControlPlane(
      Path dir,
      int apiPort,
      List<ProcessHandle> processes,
      Duration startup,
      boolean kubeletClient) {
    this.dir = dir;
    this.apiPort = apiPort;
    this.processes = processes;
    this.startupTime = startup;
    this.kubeletClient = kubeletClient;
  }

  /**
   * Starts a control plane with its state under {@code dir} (created if missing) and waits until
   * the API server is ready and the controllers have created the {@code default} ServiceAccount.
   *
   * @param bin the folder with the binaries that build.sh prints
   */
  public static ControlPlane start(Path bin, Path dir) throws IOException, InterruptedException {
    long begin = System.nanoTime();
    for (String name :
        List.of("etcd", "kube-apiserver", "kube-controller-manager", "kubetune-pki")) {
      if (!Files.isExecutable(bin.resolve(name))) {
        throw new IllegalStateException(
            bin.resolve(name)
                + " is missing: build the control plane with operator/local/controlplane/build.sh");
      }
    }
    Files.createDirectories(dir.resolve("logs"));
    Path pki = dir.resolve("pki");
    run(List.of(bin.resolve("kubetune-pki").toString(), "--dir", pki.toString()), dir);
    int etcdPort = freePort();
    int etcdPeerPort = freePort();
    int apiPort = freePort();
    Files.writeString(dir.resolve("audit-policy.yaml"), AUDIT_POLICY);
    List<ProcessHandle> started = new ArrayList<>();
    try {
      Process etcd =
          launch(
              dir,
              "etcd",
              List.of(
                  bin.resolve("etcd").toString(),
                  "--data-dir=" + dir.resolve("etcd"),
                  "--listen-client-urls=http://127.0.0.1:" + etcdPort,
                  "--listen-peer-urls=http://127.0.0.1:" + etcdPeerPort));
      started.add(etcd.toHandle());
      Process apiserver =
          launch(
              dir,
              "kube-apiserver",
              List.of(
                  bin.resolve("kube-apiserver").toString(),
                  "--etcd-servers=http://127.0.0.1:" + etcdPort,
                  "--bind-address=127.0.0.1",
                  "--advertise-address=127.0.0.1",
                  "--secure-port=" + apiPort,
                  "--cert-dir=" + dir.resolve("apiserver-certs"),
                  "--tls-cert-file=" + pki.resolve("apiserver.crt"),
                  "--tls-private-key-file=" + pki.resolve("apiserver.key"),
                  "--client-ca-file=" + pki.resolve("ca.crt"),
                  "--service-account-issuer=" + ISSUER,
                  "--service-account-key-file=" + pki.resolve("sa.pub"),
                  "--service-account-signing-key-file=" + pki.resolve("sa.key"),
                  "--service-cluster-ip-range=10.0.0.0/24",
                  "--authorization-mode=RBAC,Node",
                  // The kubernetes Service's endpoint would be 127.0.0.1, which Endpoints refuse.
                  "--endpoint-reconciler-type=none",
                  "--enable-admission-plugins=NodeRestriction,PodSecurity",
                  // pods/log, exec and port-forward go to the node's kubelet (LocalKubelet), which
                  // serves with this API server's certificate (valid for 127.0.0.1, signed by the
                  // CA)
                  // and accepts client certificates signed by the CA; the API server presents the
                  // administrator's, as kubeadm's apiserver-kubelet-client is in system:masters.
                  "--kubelet-client-certificate=" + pki.resolve("admin.crt"),
                  "--kubelet-client-key=" + pki.resolve("admin.key"),
                  "--kubelet-certificate-authority=" + pki.resolve("ca.crt"),
                  "--kubelet-preferred-address-types=InternalIP",
                  "--audit-policy-file=" + dir.resolve("audit-policy.yaml"),
                  "--audit-log-path=" + dir.resolve(AUDIT_LOG),
                  "--audit-log-format=json",
                  "--profiling=false",
                  "--v=1"));
      started.add(apiserver.toHandle());
      writeKubeconfig(dir.resolve("kubeconfig"), pki, apiPort, "admin");
      writeKubeconfig(
          dir.resolve("controller-manager.kubeconfig"), pki, apiPort, "controller-manager");
      SSLContext admin = sslContext(pki, "admin");
      waitUntil(
          () -> httpGet(admin, apiPort, "/readyz") == 200,
          apiserver,
          "kube-apiserver /readyz",
          dir.resolve("logs/kube-apiserver.log"));
      Process controllers =
          launch(
              dir,
              "kube-controller-manager",
              List.of(
                  bin.resolve("kube-controller-manager").toString(),
                  "--kubeconfig=" + dir.resolve("controller-manager.kubeconfig"),
                  "--authentication-kubeconfig=" + dir.resolve("controller-manager.kubeconfig"),
                  "--authorization-kubeconfig=" + dir.resolve("controller-manager.kubeconfig"),
                  "--secure-port=0",
                  "--leader-elect=false",
                  "--use-service-account-credentials=true",
                  "--controllers=" + String.join(",", CONTROLLERS),
                  "--root-ca-file=" + pki.resolve("ca.crt"),
                  "--service-account-private-key-file=" + pki.resolve("sa.key"),
                  "--kube-api-qps=200",
                  "--kube-api-burst=400",
                  "--concurrent-job-syncs=10",
                  "--v=1"));
      started.add(controllers.toHandle());
      waitUntil(
          () ->
              httpGet(admin, apiPort, "/api/v1/namespaces/default/serviceaccounts/default") == 200,
          controllers,
          "the default ServiceAccount (kube-controller-manager)",
          dir.resolve("logs/kube-controller-manager.log"));
      Properties props = new Properties();
      props.setProperty("apiPort", Integer.toString(apiPort));
      props.setProperty("etcdPort", Integer.toString(etcdPort));
      props.setProperty("pids", pids(started));
      props.setProperty(KUBELET_CLIENT, "true");
      try (var out = Files.newOutputStream(dir.resolve(PROPERTIES))) {
        props.store(out, "KubeTune control plane");
      }
      return new ControlPlane(
          dir, apiPort, List.copyOf(started), Duration.ofNanos(System.nanoTime() - begin), true);
    } catch (IOException | InterruptedException | RuntimeException e) {
      stopAll(started);
      throw e;
    }
  }

  /**
   * The control plane whose state is in {@code dir}, if its processes are still alive; used by
   * {@code ./kubetune cluster status|stop}.
   */
  public static java.util.Optional<ControlPlane> attach(Path dir) throws IOException {
    Path file = dir.resolve(PROPERTIES);
    if (!Files.isRegularFile(file)) {
      return java.util.Optional.empty();
    }
    Properties props = new Properties();
    try (var in = Files.newInputStream(file)) {
      props.load(in);
    }
    List<ProcessHandle> handles = new ArrayList<>();
    for (String pid : props.getProperty("pids", "").split(",")) {
      if (!pid.isBlank()) {
        ProcessHandle.of(Long.parseLong(pid.trim())).ifPresent(handles::add);
      }
    }
    if (handles.isEmpty()) {
      return java.util.Optional.empty();
    }
    return java.util.Optional.of(
        new ControlPlane(
            dir,
            Integer.parseInt(props.getProperty("apiPort")),
            handles,
            Duration.ZERO,
            Boolean.parseBoolean(props.getProperty(KUBELET_CLIENT))));
  }

  /** The administrator kubeconfig (client certificate in group system:masters). */
  public Path kubeconfig() {
    return dir.resolve("kubeconfig");
  }

  public Path dir() {
    return dir;
  }

  /** The API server's URL, {@code https://127.0.0.1:<port>}. */
  public String server() {
    return "https://127.0.0.1:" + apiPort;
  }

  /** Wall time from the call to {@link #start} until the controllers were working. */
  public Duration startupTime() {
    return startupTime;
  }

  /** The audit log of the operator's requests (JSON lines, level Metadata). */
  public Path auditLog() {
    return dir.resolve(AUDIT_LOG);
  }

  /** The CA that signed the API server's certificate, PEM. */
  public String caPem() {
    try {
      return Files.readString(dir.resolve("pki/ca.crt"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * TLS for a node agent's HTTPS endpoint (the kubelet port the API server calls for pods/log): the
   * API server's own key and certificate (valid for 127.0.0.1, signed by this CA, so the API server
   * verifies it with {@code --kubelet-certificate-authority}), trusting client certificates signed
   * by the CA.
   */
  public SSLContext kubeletServerTls() throws IOException {
    return sslContext(dir.resolve("pki"), "apiserver");
  }

  /**
   * Whether the API server was started with kubelet client certificates (pods/log through a node
   * agent); false for a control plane an older KubeTune started.
   */
  public boolean callsKubelets() {
    return kubeletClient;
  }

  /** Whether every process is alive and {@code /readyz} answers 200. */
  public boolean ready() {
    if (!processes.stream().allMatch(ProcessHandle::isAlive)) {
      return false;
    }
    try {
      return httpGet(sslContext(dir.resolve("pki"), "admin"), apiPort, "/readyz") == 200;
    } catch (IOException e) {
      return false;
    }
  }

  /** A client with administrator rights. */
  public KubernetesClient adminClient() {
    try {
      return new KubernetesClientBuilder()
          .withConfig(Config.fromKubeconfig(Files.readString(kubeconfig())))
          .build();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * A client that authenticates with {@code token} (e.g. a ServiceAccount token from the
   * TokenRequest API) and trusts this control plane's CA; {@code userAgent} tells its requests
   * apart in the audit log.
   */
  public KubernetesClient tokenClient(String token, String userAgent) {
    Config config =
        new io.fabric8.kubernetes.client.ConfigBuilder(Config.empty())
            .withMasterUrl(server())
            .withCaCertData(
                Base64.getEncoder().encodeToString(caPem().getBytes(StandardCharsets.UTF_8)))
            .withOauthToken(token)
            .withUserAgent(userAgent)
            .withNamespace("default")
            .build();
    return new KubernetesClientBuilder().withConfig(config).build();
  }

  /** Stops kube-controller-manager, kube-apiserver and etcd (and anything they started). */
  @Override
  public void close() {
    stopAll(processes);
    try {
      Files.deleteIfExists(dir.resolve(PROPERTIES));
    } catch (IOException ignored) {
      // the processes are gone; a stale file is found dead by attach()
    }
  }

  private static void stopAll(List<ProcessHandle> handles) {
    List<ProcessHandle> reversed = new ArrayList<>(handles);
    java.util.Collections.reverse(reversed);
    for (ProcessHandle handle : reversed) {
      handle.descendants().forEach(ProcessHandle::destroy);
      handle.destroy();
      try {
        handle.onExit().get(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        handle.descendants().forEach(ProcessHandle::destroyForcibly);
        handle.destroyForcibly();
      }
    }
  }

  private static String pids(List<ProcessHandle> handles) {
    return String.join(",", handles.stream().map(h -> Long.toString(h.pid())).toList());
  }

  private static Process launch(Path dir, String name, List<String> command) throws IOException {
    Path log = dir.resolve("logs").resolve(name + ".log");
    return new ProcessBuilder(command)
        .directory(dir.toFile())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
        .start();
  }

  private static void run(List<String> command, Path dir) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", command) + " failed: " + out);
    }
  }

  interface Check {
    boolean ok() throws IOException;
  }

  private static void waitUntil(Check check, Process process, String what, Path log)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IOException(
            "waiting for "
                + what
                + ": the process exited with "
                + process.exitValue()
                + "; last lines of "
                + log
                + ":\n"
                + tail(log));
      }
      try {
        if (check.ok()) {
          return;
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      Thread.sleep(100);
    }
    throw new IOException(
        "waiting for " + what + ": not ready after " + READY_TIMEOUT + "; see " + log);
  }

  private static String tail(Path log) throws IOException {
    List<String> lines = Files.readAllLines(log);
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
  }

  private static int httpGet(SSLContext ssl, int port, String path) throws IOException {
    HttpClient client =
        HttpClient.newBuilder().sslContext(ssl).connectTimeout(Duration.ofSeconds(2)).build();
    try {
      return client
          .send(
              HttpRequest.newBuilder(URI.create("https://127.0.0.1:" + port + path))
                  .timeout(Duration.ofSeconds(5))
                  .build(),
              HttpResponse.BodyHandlers.discarding())
          .statusCode();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }

  private static SSLContext sslContext(Path pki, String user) throws IOException {
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      Certificate ca;
      Certificate cert;
      try (var in = Files.newInputStream(pki.resolve("ca.crt"))) {
        ca = cf.generateCertificate(in);
      }
      try (var in = Files.newInputStream(pki.resolve(user + ".crt"))) {
        cert = cf.generateCertificate(in);
      }
      String pem = Files.readString(pki.resolve(user + ".key"));
      byte[] der =
          Base64.getMimeDecoder()
              .decode(pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", ""));
      PrivateKey key = KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(der));
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("ca", ca);
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      keys.setKeyEntry("key", key, new char[0], new Certificate[] {cert});
      KeyManagerFactory kmf =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, new char[0]);
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      return ctx;
    } catch (java.security.GeneralSecurityException e) {
      throw new IOException("cannot load the control plane's certificates from " + pki, e);
    }
  }

  private static void writeKubeconfig(Path file, Path pki, int port, String user)
      throws IOException {
    String yaml =
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: kubetune
          cluster:
            server: https://127.0.0.1:%d
            certificate-authority-data: %s
        users:
        - name: %s
          user:
            client-certificate-data: %s
            client-key-data: %s
        contexts:
        - name: kubetune
          context:
            cluster: kubetune
            user: %s
            namespace: default
        current-context: kubetune
        """
            .formatted(
                port,
                base64(pki.resolve("ca.crt")),
                user,
                base64(pki.resolve(user + ".crt")),
                base64(pki.resolve(user + ".key")),
                user);
    Files.writeString(file, yaml);
    file.toFile().setReadable(false, false);
    file.toFile().setReadable(true, true);
  }

  private static String base64(Path file) throws IOException {
    return Base64.getEncoder().encodeToString(Files.readAllBytes(file));
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
