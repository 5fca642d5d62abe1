package io.kubetune.trainer.storage;

/**
 * One entry of a listing. Keys are relative to the store's root prefix. A folder (only returned by
 * non-recursive listings) ends with {@code /} and has size -1.
 */
public record ObjectInfo(String key, long size, boolean folder) {

  static ObjectInfo object(String key, long size) {
    return new ObjectInfo(key, size, false);
  }

  static ObjectInfo folder(String key) {
    return new ObjectInfo(key, -1, true);
  }
}
