package io.kubetune.local.cluster;

import io.kubetune.local.KubeTuneLocal;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * {@code ./kubetune cluster start|status|stop}: a real control plane on 127.0.0.1 (see {@link
 * ControlPlane}) whose state lives in {@code .kubetune/cluster/}, with an administrator kubeconfig
 * at {@code .kubetune/kubeconfig} for kubectl. {@code start} returns once the control plane is
 * ready; its processes keep running until {@code stop}.
 */
public final class ClusterCommand {
  static final String USAGE = "usage: ./kubetune cluster start|status|stop";

  private ClusterCommand() {}

  public static void main(String[] args) throws Exception {
    System.exit(run(args, KubeTuneLocal.repoRoot()));
  }

  /**
   * The control plane of {@code ./kubetune cluster}: the running one, else a new one started with
   * its state in {@code .kubetune/cluster/}, prepared (CRD, RBAC) and its administrator kubeconfig
   * copied to {@code .kubetune/kubeconfig}.
   */
  public static ControlPlane ensureRunning(Path root, PrintStream out)
      throws IOException, InterruptedException {
    Path dir = root.resolve(".kubetune").resolve("cluster");
    Optional<ControlPlane> running = ControlPlane.attach(dir);
    if (running.isPresent() && running.get().ready()) {
      if (running.get().callsKubelets()) {
        out.println("control plane already running at " + running.get().server());
        return running.get();
      }
      out.println(
          "restarting the control plane at "
              + running.get().server()
              + ": an older KubeTune started it without kubelet client certificates, which"
              + " pods/log needs (its etcd data and PKI are kept)");
    }
    running.ifPresent(ControlPlane::close);
    ControlPlane started = ControlPlane.start(ControlPlaneBinaries.locate(root), dir);
    Files.copy(
        started.kubeconfig(),
        root.resolve(".kubetune").resolve("kubeconfig"),
        StandardCopyOption.REPLACE_EXISTING);
    RealClusterSetup.prepare(started, root);
    out.printf(
        "control plane ready at %s in %.1f s (etcd, kube-apiserver, kube-controller-manager;"
            + " logs in %s)%n",
        started.server(), started.startupTime().toMillis() / 1000.0, dir.resolve("logs"));
    return started;
  }

  static int run(String[] args, Path root) throws Exception {
    if (args.length != 1) {
      System.err.println("error: " + USAGE);
      return 2;
    }
    Path state = root.resolve(".kubetune");
    Path dir = state.resolve("cluster");
    Path kubeconfig = state.resolve("kubeconfig");
    Optional<ControlPlane> running = ControlPlane.attach(dir);
    switch (args[0]) {
      case "start" -> {
        ensureRunning(root, System.out);
        System.out.println("export KUBECONFIG=" + kubeconfig);
        return 0;
      }
      case "status" -> {
        if (running.isEmpty()) {
          System.out.println("stopped");
          return 3;
        }
        boolean ready = running.get().ready();
        System.out.println((ready ? "running at " : "not ready at ") + running.get().server());
        return ready ? 0 : 1;
      }
      case "stop" -> {
        if (running.isEmpty()) {
          System.out.println("not running");
          return 0;
        }
        running.get().close();
        System.out.println("stopped");
        return 0;
      }
      default -> {
        System.err.println("error: unknown cluster command '" + args[0] + "'; " + USAGE);
        return 2;
      }
    }
  }
}
