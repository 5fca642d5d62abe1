package io.kubetune.local;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.kubetune.api.v1alpha1.CanaryStatus;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.ServingStatus;
import java.io.PrintStream;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Local mode's progress lines for a canary while the FineTuneJob serves: the weight, both variants
 * (adapter, digest, requests and errors the operator tallied) and the decision, as {@code
 * status.serving.canary} shows them. A line is printed when it differs from the last one, so a
 * canary shows up as it starts, as its counts move, and once when it is decided.
 */
final class CanaryProgress implements AutoCloseable {
  /** How often the status is read: the operator itself looks again every 10 s. */
  static final long POLL_MILLIS = 500;

  private ScheduledExecutorService poller;
  private String last;

  /** Prints only what {@link #show} is given; {@link #start} also polls the API. */
  CanaryProgress() {}

  /** Starts printing canary lines of FineTuneJob {@code namespace/name} to {@code out}. */
  static CanaryProgress start(
      KubernetesClient client, String namespace, String name, PrintStream out) {
    ScheduledExecutorService poller =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "canary-progress");
              t.setDaemon(true);
              return t;
            });
    CanaryProgress progress = new CanaryProgress();
    progress.poller = poller;
    poller.scheduleWithFixedDelay(
        () -> {
          try {
            FineTuneJob job =
                client.resources(FineTuneJob.class).inNamespace(namespace).withName(name).get();
            progress.show(
                job == null || job.getStatus() == null ? null : job.getStatus().serving, out);
          } catch (RuntimeException e) {
            // The API server is going away with local mode; the next poll (if any) tries again.
          }
        },
        0,
        POLL_MILLIS,
        TimeUnit.MILLISECONDS);
    return progress;
  }

  /** Prints the canary line of {@code serving} if it changed since the last one printed. */
  synchronized void show(ServingStatus serving, PrintStream out) {
    String line = line(serving);
    if (line != null && !line.equals(last)) {
      out.println(line);
    }
    if (line != null) {
      last = line;
    }
  }

  /**
   * The canary as one line, or null when there is none: {@code canary Observing at 25%: canary
   * <uri> (sha256 1a2b3c4d5e6f) 12 requests 0 errors | stable <uri> (sha256 …) 36 requests 0 errors
   * | <message>}.
   */
  static String line(ServingStatus serving) {
    CanaryStatus c = serving == null ? null : serving.canary;
    if (c == null) {
      return null;
    }
    return "canary "
        + c.decision
        + " at "
        + c.weight
        + "%: canary "
        + c.adapterUri
        + " ("
        + shortDigest(c.adapterDigest)
        + ") "
        + count(c.requests, c.errors)
        + " | stable "
        + stable(serving)
        + count(c.stableRequests, c.stableErrors)
        + " | "
        + Objects.requireNonNullElse(c.message, "");
  }

  /**
   * The stable variant the counts belong to: once a promotion completed, status.serving names the
   * canary's adapter, and the stable counts were the replaced adapter's.
   */
  private static String stable(ServingStatus serving) {
    if (Objects.equals(serving.adapterDigest, serving.canary.adapterDigest)) {
      return "(the adapter it replaced) ";
    }
    return serving.adapterUri + " (" + shortDigest(serving.adapterDigest) + ") ";
  }

  private static String count(Long requests, Long errors) {
    return Objects.requireNonNullElse(requests, 0L)
        + " requests "
        + Objects.requireNonNullElse(errors, 0L)
        + " errors";
  }

  private static String shortDigest(String digest) {
    return digest == null
        ? "no digest"
        : "sha256 " + digest.substring(0, Math.min(12, digest.length()));
  }

  @Override
  public void close() {
    if (poller != null) {
      poller.shutdownNow();
    }
  }
}
