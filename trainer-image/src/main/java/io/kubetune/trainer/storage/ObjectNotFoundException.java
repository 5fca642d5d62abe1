package io.kubetune.trainer.storage;

/** The object does not exist (S3 404 / NoSuchKey, or no such file). */
public class ObjectNotFoundException extends StorageException {
  public ObjectNotFoundException(String message) {
    super(message);
  }
}
