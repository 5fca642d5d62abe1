package io.kubetune.trainer.storage;

/**
 * A key would escape the store's prefix or is otherwise unsafe. Thrown before any request is made.
 */
public class InvalidKeyException extends IllegalArgumentException {
  public InvalidKeyException(String message) {
    super(message);
  }
}
