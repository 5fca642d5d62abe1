package io.kubetune.trainer.storage;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.OptionalLong;

/** An {@link ObjectStore} that forwards every call; tests override the calls they disturb. */
public class ForwardingObjectStore implements ObjectStore {
  protected final ObjectStore delegate;

  public ForwardingObjectStore(ObjectStore delegate) {
    this.delegate = delegate;
  }

  @Override
  public StorageUri root() {
    return delegate.root();
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    delegate.put(key, bytes);
  }

  @Override
  public void put(String key, Path file) throws IOException {
    delegate.put(key, file);
  }

  @Override
  public boolean putIfAbsent(String key, byte[] bytes) throws IOException {
    return delegate.putIfAbsent(key, bytes);
  }

  @Override
  public void get(String key, Path target) throws IOException {
    delegate.get(key, target);
  }

  @Override
  public byte[] getBytes(String key) throws IOException {
    return delegate.getBytes(key);
  }

  @Override
  public List<ObjectInfo> list(String prefix, boolean recursive) throws IOException {
    return delegate.list(prefix, recursive);
  }

  @Override
  public OptionalLong size(String key) throws IOException {
    return delegate.size(key);
  }

  @Override
  public void delete(String key) throws IOException {
    delegate.delete(key);
  }

  @Override
  public void delete(Collection<String> keys) throws IOException {
    delegate.delete(keys);
  }

  @Override
  public void close() {
    delegate.close();
  }
}
