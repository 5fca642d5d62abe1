package io.kubetune.trainer.storage;

import io.kubetune.trainer.BadInputException;

/**
 * The bucket of an s3:// URI does not exist at the storage endpoint: bad input (exit 2), not an
 * outage. Callers that know which field held the URI rethrow it with the field's name.
 */
public class NoSuchBucketException extends BadInputException {
  /**
   * @param what the operation and object URI, e.g. {@code GET s3://bucket/key}
   * @param detail the server's answer (status, error code, message; no credentials)
   */
  public NoSuchBucketException(String what, String detail) {
    super(
        what
            + ": the bucket does not exist ("
            + detail
            + "); create it, or fix the bucket name in the URI or storage.endpoint");
  }
}
