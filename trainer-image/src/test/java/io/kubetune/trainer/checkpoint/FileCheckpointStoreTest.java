package io.kubetune.trainer.checkpoint;

import io.kubetune.trainer.storage.ObjectStore;
import io.kubetune.trainer.storage.ObjectStores;
import io.kubetune.trainer.storage.StorageSettings;

class FileCheckpointStoreTest extends CheckpointStoreContractTest {
  @Override
  ObjectStore open(String name) {
    return ObjectStores.forUri(
        tmp.resolve("store").resolve(name).toUri().toString(), StorageSettings.defaults());
  }
}
