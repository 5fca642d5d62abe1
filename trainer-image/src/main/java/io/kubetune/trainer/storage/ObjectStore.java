package io.kubetune.trainer.storage;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.OptionalLong;

/**
 * Objects under one folder-like root ({@link #root()}). Every key is relative to the root and is
 * validated by {@link Keys} before any request is made, so no key can name anything outside the
 * root. Writes are all-or-nothing: a reader sees the old object, the new one, or none, never a
 * partial one. Implementations are thread-safe.
 */
public interface ObjectStore extends AutoCloseable {

  /** The root every key is relative to. */
  StorageUri root();

  /** Writes {@code bytes} to {@code key}, replacing any existing object. */
  void put(String key, byte[] bytes) throws IOException;

  /**
   * Streams {@code file} to {@code key}, replacing any existing object. Large files are uploaded in
   * parts (S3 multipart) and an upload that fails is aborted.
   */
  void put(String key, Path file) throws IOException;

  /**
   * Creates {@code key} only if no object exists there (S3 {@code If-None-Match: *}; an atomic
   * create on file systems).
   *
   * @return true if this call created the object, false if one already existed (left unchanged)
   */
  boolean putIfAbsent(String key, byte[] bytes) throws IOException;

  /**
   * Streams {@code key} into {@code target} (created or replaced atomically once complete).
   *
   * @throws ObjectNotFoundException if there is no such object
   */
  void get(String key, Path target) throws IOException;

  /**
   * Reads a small object fully into memory.
   *
   * @throws ObjectNotFoundException if there is no such object
   */
  byte[] getBytes(String key) throws IOException;

  /**
   * Lists objects whose key starts with {@code prefix} (empty for the whole root), sorted by key.
   * Recursive listings return objects only; otherwise the direct children of the folder {@code
   * prefix} are returned, sub-folders as {@link ObjectInfo#folder()} entries. Pages through the
   * whole result.
   */
  List<ObjectInfo> list(String prefix, boolean recursive) throws IOException;

  /** The size of {@code key}, or empty if it does not exist. */
  OptionalLong size(String key) throws IOException;

  default boolean exists(String key) throws IOException {
    return size(key).isPresent();
  }

  /** Deletes {@code key}; deleting a missing object is not an error. */
  void delete(String key) throws IOException;

  /** Deletes all {@code keys} (in batches); missing objects are not an error. */
  void delete(Collection<String> keys) throws IOException;

  @Override
  void close();
}
