package io.kubetune.trainer.storage;

import java.io.IOException;

/**
 * An object-storage operation failed. Messages name the operation and the object URI, never a
 * credential.
 */
public class StorageException extends IOException {
  public StorageException(String message) {
    super(message);
  }

  public StorageException(String message, Throwable cause) {
    super(message, cause);
  }
}
