package io.kubetune.trainer.storage;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * {@link ObjectStore} over a local directory ({@code file:///path/}), e.g. a mounted volume. Writes
 * go to a hidden temporary file in the target directory, are fsynced and renamed into place, so a
 * reader never sees a partial object. {@link #putIfAbsent} publishes with a hard link, which fails
 * atomically when the name exists. Temporary files are hidden from listings.
 */
public final class FileObjectStore implements ObjectStore {
  static final String TEMP_PREFIX = ".kubetune-tmp-";

  private final StorageUri root;
  private final Path dir;

  public FileObjectStore(StorageUri root) {
    if (!root.isFile()) {
      throw new IllegalArgumentException(root + " is not a file:// URI");
    }
    this.root = root;
    this.dir = root.path().toAbsolutePath().normalize();
  }

  @Override
  public StorageUri root() {
    return root;
  }

  private Path resolve(String key) {
    Keys.checkKey(key, root.toString());
    Path path = dir.resolve(key).normalize();
    if (!path.startsWith(dir) || path.equals(dir)) {
      // Unreachable after Keys.checkKey; kept as a second line of defence.
      throw new InvalidKeyException("Invalid object key \"" + key + "\": escapes " + root);
    }
    return path;
  }

  private Path tempFor(Path target) throws IOException {
    Files.createDirectories(target.getParent());
    return target.resolveSibling(TEMP_PREFIX + target.getFileName() + "-" + UUID.randomUUID());
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    Path target = resolve(key);
    Path temp = tempFor(target);
    try {
      writeSynced(temp, bytes);
      moveIntoPlace(temp, target);
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  @Override
  public void put(String key, Path file) throws IOException {
    Path target = resolve(key);
    if (!Files.isRegularFile(file)) {
      throw new StorageException(
          "PUT " + root.resolve(key) + ": source " + file + " is not a regular file");
    }
    Path temp = tempFor(target);
    try {
      Files.copy(file, temp, StandardCopyOption.REPLACE_EXISTING);
      fsync(temp);
      moveIntoPlace(temp, target);
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  @Override
  public boolean putIfAbsent(String key, byte[] bytes) throws IOException {
    Path target = resolve(key);
    Path temp = tempFor(target);
    try {
      writeSynced(temp, bytes);
      try {
        Files.createLink(target, temp);
      } catch (FileAlreadyExistsException e) {
        return false;
      } catch (UnsupportedOperationException e) {
        // No hard links (rare): an exclusive create still cannot overwrite, but a crash may leave
        // a partial file; readers verify checksums.
        try (OutputStream out =
            Files.newOutputStream(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.SYNC)) {
          out.write(bytes);
        } catch (FileAlreadyExistsException exists) {
          return false;
        }
      }
      fsyncDir(target.getParent());
      return true;
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  @Override
  public void get(String key, Path target) throws IOException {
    Path source = resolve(key);
    if (!Files.isRegularFile(source)) {
      throw notFound(key);
    }
    Path parent = target.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path temp = parent.resolve(TEMP_PREFIX + target.getFileName() + "-" + UUID.randomUUID());
    try {
      Files.copy(source, temp);
      moveIntoPlace(temp, target);
    } catch (NoSuchFileException e) {
      if (!Files.isRegularFile(source)) {
        throw notFound(key);
      }
      throw e;
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  @Override
  public byte[] getBytes(String key) throws IOException {
    Path source = resolve(key);
    if (!Files.isRegularFile(source)) {
      throw notFound(key);
    }
    try {
      return Files.readAllBytes(source);
    } catch (NoSuchFileException e) {
      throw notFound(key);
    }
  }

  private ObjectNotFoundException notFound(String key) {
    return new ObjectNotFoundException("GET " + root.resolve(key) + ": no such object");
  }

  @Override
  public List<ObjectInfo> list(String prefix, boolean recursive) throws IOException {
    String p = Keys.checkPrefix(prefix, root.toString());
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    List<ObjectInfo> out = new ArrayList<>();
    if (recursive) {
      // Walk from the deepest existing folder of the prefix, then filter by the full prefix.
      int slash = p.lastIndexOf('/');
      Path start = slash < 0 ? dir : dir.resolve(p.substring(0, slash));
      if (!Files.isDirectory(start)) {
        return List.of();
      }
      try (Stream<Path> files = Files.walk(start)) {
        for (Path f : (Iterable<Path>) files::iterator) {
          if (Files.isRegularFile(f) && !f.getFileName().toString().startsWith(TEMP_PREFIX)) {
            String key = keyOf(f);
            if (key.startsWith(p)) {
              out.add(ObjectInfo.object(key, sizeOrZero(f)));
            }
          }
        }
      }
    } else {
      int slash = p.lastIndexOf('/');
      String folder = p.substring(0, slash + 1);
      Path start = folder.isEmpty() ? dir : dir.resolve(folder);
      if (!Files.isDirectory(start)) {
        return List.of();
      }
      try (Stream<Path> children = Files.list(start)) {
        for (Path f : (Iterable<Path>) children::iterator) {
          String name = f.getFileName().toString();
          if (name.startsWith(TEMP_PREFIX)) {
            continue;
          }
          String key = keyOf(f);
          if (!key.startsWith(p)) {
            continue;
          }
          if (Files.isDirectory(f)) {
            if (hasObjects(f)) {
              out.add(ObjectInfo.folder(key + "/"));
            }
          } else if (Files.isRegularFile(f)) {
            out.add(ObjectInfo.object(key, sizeOrZero(f)));
          }
        }
      }
    }
    out.sort(Comparator.comparing(ObjectInfo::key));
    return out;
  }

  private static boolean hasObjects(Path folder) throws IOException {
    try (Stream<Path> files = Files.walk(folder)) {
      return files.anyMatch(
          f -> Files.isRegularFile(f) && !f.getFileName().toString().startsWith(TEMP_PREFIX));
    }
  }

  private String keyOf(Path f) {
    return dir.relativize(f).toString().replace(f.getFileSystem().getSeparator(), "/");
  }

  private static long sizeOrZero(Path f) {
    try {
      return Files.size(f);
    } catch (IOException e) {
      return 0;
    }
  }

  @Override
  public OptionalLong size(String key) throws IOException {
    Path path = resolve(key);
    if (!Files.isRegularFile(path)) {
      return OptionalLong.empty();
    }
    try {
      return OptionalLong.of(Files.size(path));
    } catch (NoSuchFileException e) {
      return OptionalLong.empty();
    }
  }

  @Override
  public void delete(String key) throws IOException {
    Path path = resolve(key);
    if (Files.isDirectory(path)) {
      return; // a folder is not an object; S3 would not delete anything either
    }
    Files.deleteIfExists(path);
    pruneEmptyParents(path.getParent());
  }

  @Override
  public void delete(Collection<String> keys) throws IOException {
    for (String key : keys) {
      resolve(key); // validate all before deleting any
    }
    for (String key : keys) {
      delete(key);
    }
  }

  /** Removes folders left empty, up to the root, as S3 has no empty folders. */
  private void pruneEmptyParents(Path folder) throws IOException {
    for (Path f = folder; f != null && f.startsWith(dir) && !f.equals(dir); f = f.getParent()) {
      try {
        Files.delete(f);
      } catch (DirectoryNotEmptyException | NoSuchFileException e) {
        return;
      }
    }
  }

  private static void writeSynced(Path temp, byte[] bytes) throws IOException {
    try (FileChannel ch =
        FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      ByteBuffer buf = ByteBuffer.wrap(bytes);
      while (buf.hasRemaining()) {
        ch.write(buf);
      }
      ch.force(true);
    }
  }

  private static void fsync(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  private static void fsyncDir(Path folder) {
    try (FileChannel ch = FileChannel.open(folder, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException | UnsupportedOperationException e) {
      // Not every file system lets a directory be opened for sync; the rename is still atomic.
    }
  }

  private static void moveIntoPlace(Path temp, Path target) throws IOException {
    try {
      Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
    }
    fsyncDir(target.getParent());
  }

  @Override
  public void close() {}

  @Override
  public String toString() {
    return "FileObjectStore[" + root + "]";
  }
}
