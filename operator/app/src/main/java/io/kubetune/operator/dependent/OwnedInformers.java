package io.kubetune.operator.dependent;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.kubetune.operator.Labels;
import java.util.Map;

/** The informer every dependent uses: only objects this operator labelled, by owner reference. */
final class OwnedInformers {
  private OwnedInformers() {}

  static <R extends HasMetadata> InformerEventSourceConfiguration.Builder<R> managed(
      InformerEventSourceConfiguration.Builder<R> builder, String name) {
    return builder.withName(name).withLabelSelector(Labels.MANAGED_SELECTOR);
  }

  /** True when {@code actual} carries every entry of {@code wanted} (others may add their own). */
  static boolean containsAll(Map<String, String> actual, Map<String, String> wanted) {
    if (wanted == null || wanted.isEmpty()) {
      return true;
    }
    return actual != null && actual.entrySet().containsAll(wanted.entrySet());
  }
}
