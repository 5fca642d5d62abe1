package io.kubetune.operator;

import io.kubetune.operator.metrics.FineTuneJobMetrics;
import io.kubetune.operator.model.OperatorSettings;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/** Wires the framework-free pieces (settings, metrics) into Quarkus. */
public class OperatorBeans {

  @Produces
  @Singleton
  OperatorSettings operatorSettings(
      @ConfigProperty(name = "kubetune.trainer.image") String trainerImage,
      @ConfigProperty(name = "kubetune.trainer.image-pull-policy", defaultValue = "IfNotPresent")
          String pullPolicy,
      @ConfigProperty(name = "kubetune.trainer.default-cpu", defaultValue = "1") String cpu,
      @ConfigProperty(name = "kubetune.trainer.default-memory", defaultValue = "4Gi") String memory,
      @ConfigProperty(name = "kubetune.progress.poll-interval", defaultValue = "15s")
          java.time.Duration progressPollInterval) {
    return new OperatorSettings(trainerImage, pullPolicy, cpu, memory, progressPollInterval);
  }

  @Produces
  @Singleton
  FineTuneJobMetrics fineTuneJobMetrics(MeterRegistry registry) {
    return new FineTuneJobMetrics(registry);
  }
}
