package io.kubetune.api.v1alpha1;

/** The URI forms a FineTuneJob accepts for models, data and checkpoints. */
public final class StorageUris {

  /**
   * {@code s3://bucket/key...} (bucket per the S3 naming rules) or {@code pvc://claim/path...}
   * (claim is a DNS-1123 name of a PersistentVolumeClaim in the FineTuneJob's namespace).
   */
  public static final String PATTERN =
      "^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]|pvc://[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?)"
          + "(/[^\\s]*)?$";

  public static final String HINT =
      "use s3://<bucket>/<prefix> or pvc://<claim-name>/<path> (lower-case bucket/claim names)";

  private StorageUris() {}
}
