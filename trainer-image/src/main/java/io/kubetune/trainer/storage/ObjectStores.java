package io.kubetune.trainer.storage;

/** Opens the {@link ObjectStore} for a storage URI. */
public final class ObjectStores {
  private ObjectStores() {}

  /**
   * Opens a store rooted at {@code uri} ({@code s3://bucket/prefix/} or {@code file:///path/}).
   * Settings apply to S3 only; credentials come from the standard AWS chain.
   */
  public static ObjectStore forUri(String uri, StorageSettings settings) {
    return forUri(StorageUri.parse(uri), settings);
  }

  public static ObjectStore forUri(StorageUri uri, StorageSettings settings) {
    StorageSettings s = settings == null ? StorageSettings.defaults() : settings;
    if (uri.isS3()) {
      return S3ObjectStore.create(uri, s);
    }
    return new FileObjectStore(uri);
  }
}
