package io.kubetune.operator.metrics;

import io.javaoperatorsdk.operator.api.reconciler.IndexedResourceCache;
import io.kubetune.api.v1alpha1.FineTuneJob;
import io.kubetune.api.v1alpha1.Phase;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.atomic.AtomicReference;

/**
 * KubeTune's own metrics (JOSDK adds its generic controller metrics separately): reconciles by
 * outcome, reconcile duration, and FineTuneJobs by phase read from the informer cache, so a deleted
 * FineTuneJob never lingers in a gauge.
 */
public class FineTuneJobMetrics {
  private final MeterRegistry registry;
  private final Timer reconcileTimer;
  private final AtomicReference<IndexedResourceCache<FineTuneJob>> cache = new AtomicReference<>();

  public FineTuneJobMetrics(MeterRegistry registry) {
    this.registry = registry;
    this.reconcileTimer =
        Timer.builder("kubetune.reconcile.duration")
            .description("Time spent in one FineTuneJob reconcile")
            .register(registry);
    for (Phase phase : Phase.values()) {
      Gauge.builder("kubetune.finetunejobs", () -> countInPhase(phase))
          .description("FineTuneJobs by phase")
          .tag("phase", phase.name())
          .register(registry);
    }
  }

  public void watch(IndexedResourceCache<FineTuneJob> primaryCache) {
    cache.compareAndSet(null, primaryCache);
  }

  public Timer.Sample startReconcile() {
    return Timer.start(registry);
  }

  public void reconciled(Timer.Sample sample, String outcome) {
    sample.stop(reconcileTimer);
    Counter.builder("kubetune.reconciles")
        .description("FineTuneJob reconciles by outcome (unchanged, status-updated, error)")
        .tag("outcome", outcome)
        .register(registry)
        .increment();
  }

  public void childWritten(String kind, String action) {
    Counter.builder("kubetune.child.writes")
        .description("Writes of child objects by kind and action")
        .tag("kind", kind)
        .tag("action", action)
        .register(registry)
        .increment();
  }

  private double countInPhase(Phase phase) {
    IndexedResourceCache<FineTuneJob> c = cache.get();
    if (c == null) {
      return 0;
    }
    return c.list()
        .filter(ftj -> ftj.getStatus() != null && ftj.getStatus().phase == phase)
        .count();
  }
}
