package io.kubetune.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.kubetune.api.StorageUri;

/** Settings for s3:// URIs. The operator never reads the Secret; it only references it. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class StorageSpec {
  @Size(max = 2048)
  @Pattern(StorageUri.ENDPOINT_PATTERN)
  @JsonPropertyDescription(
      "S3 endpoint URL for S3-compatible stores (MinIO, Ceph, R2, ...). Default: AWS S3.")
  public String endpoint;

  @Size(max = 64)
  @JsonPropertyDescription("Region. Default " + io.kubetune.api.Bounds.STORAGE_REGION_DEFAULT + ".")
  public String region;

  @JsonPropertyDescription(
      "Use path-style addressing (http://endpoint/bucket/key), needed by most self-hosted"
          + " stores. Default false.")
  public Boolean pathStyle;

  @Size(max = 253)
  @Pattern("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
  @JsonPropertyDescription(
      "Name of a Secret in this namespace with keys AWS_ACCESS_KEY_ID and"
          + " AWS_SECRET_ACCESS_KEY (optionally AWS_SESSION_TOKEN), injected into the trainer as"
          + " environment variables. Omit to use the pod's ambient credentials.")
  public String credentialsSecret;
}
