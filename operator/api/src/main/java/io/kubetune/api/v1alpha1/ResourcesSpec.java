package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Toleration;
import io.kubetune.api.Bounds;
import java.util.List;
import java.util.Map;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ResourcesSpec {
  public static final String DEFAULT_GPU_RESOURCE_NAME = "nvidia.com/gpu";

  @Min(Bounds.GPUS_MIN)
  @Max(Bounds.GPUS_MAX)
  @JsonPropertyDescription("GPUs for the training pod (limits = requests). Default 0 (CPU only).")
  public Integer gpus;

  @Size(max = 253)
  @Pattern("^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")
  @JsonPropertyDescription(
      "Extended resource name for GPUs, e.g. nvidia.com/gpu, amd.com/gpu. Default"
          + " nvidia.com/gpu.")
  public String gpuResourceName;

  @JsonPropertyDescription("CPU request, e.g. 4 or 3500m. Default 1.")
  public Quantity cpu;

  @JsonPropertyDescription("Memory request and limit, e.g. 16Gi. Default 4Gi.")
  public Quantity memory;

  @Size(max = 64)
  @JsonPropertyDescription("Node labels the training pod must match.")
  public Map<String, String> nodeSelector;

  @Size(max = 64)
  @JsonPropertyDescription(
      "Tolerations for the training pod (e.g. for tainted GPU nodes). When gpus > 0 a"
          + " toleration for the GPU resource name is added automatically.")
  public List<Toleration> tolerations;

  @Size(max = 253)
  @JsonPropertyDescription("PriorityClass of the training pod.")
  public String priorityClassName;
}
