package io.kubetune.trainer.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class FileObjectStoreTest extends ObjectStoreContractTest {
  Path root;

  @Override
  ObjectStore open(String name) {
    root = tmp.resolve("store").resolve(name);
    return ObjectStores.forUri(root.toUri().toString(), StorageSettings.defaults());
  }

  @Test
  void writesLeaveNoTemporaryFilesAndHideThemFromListings() throws Exception {
    store.put("a/x", new byte[] {1});
    store.putIfAbsent("a/y", new byte[] {2});
    store.putIfAbsent("a/y", new byte[] {3});
    try (var files = Files.list(root.resolve("a"))) {
      assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("x", "y");
    }
    // A crashed writer's leftover is invisible.
    Files.write(root.resolve("a").resolve(FileObjectStore.TEMP_PREFIX + "x-123"), new byte[] {9});
    assertThat(store.list("a/", true)).extracting(ObjectInfo::key).containsExactly("a/x", "a/y");
  }

  @Test
  void deletePrunesEmptyFoldersLikeS3() throws Exception {
    store.put("p/q/r", new byte[] {1});
    store.delete("p/q/r");
    assertThat(store.list("", false)).isEmpty();
    assertThat(root).isDirectory();
  }

  @Test
  void rootIsTheDirectoryOfTheUri() throws Exception {
    assertThat(store.root().isFile()).isTrue();
    assertThat(store.root().path()).isEqualTo(root);
  }
}
