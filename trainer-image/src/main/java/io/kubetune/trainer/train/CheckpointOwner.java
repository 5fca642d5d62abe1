package io.kubetune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kubetune.api.TrainerLayout;
import io.kubetune.trainer.BadInputException;
import io.kubetune.trainer.storage.ObjectStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The FineTuneJob a checkpoints location belongs to. Two jobs sharing one {@code checkpoints.uri}
 * would overwrite each other's checkpoints and export, so the first run claims the location with an
 * owner marker ({@value #KEY}, written with a conditional put) and a run of another job (another
 * uid, including a re-created job of the same name) is refused as bad input. Taking a location over
 * is deliberate: delete the marker.
 */
public record CheckpointOwner(String namespace, String name, String uid) {
  /** The marker's key below the checkpoints location. */
  public static final String KEY = TrainerLayout.OWNER_MARKER;

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Claims {@code store} for this owner, or confirms it is already ours.
   *
   * @throws BadInputException when another job owns it, or the marker is unreadable
   */
  public void claim(ObjectStore store, String locationUri) throws IOException {
    ObjectNode marker = JSON.createObjectNode();
    marker.put("namespace", namespace);
    marker.put("name", name);
    marker.put("uid", uid);
    if (store.putIfAbsent(KEY, JSON.writeValueAsBytes(marker))) {
      return;
    }
    JsonNode existing;
    try {
      existing = JSON.readTree(new String(store.getBytes(KEY), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new BadInputException(
          locationUri
              + KEY
              + " is not a readable owner marker ("
              + e.getMessage()
              + "); delete it to let this FineTuneJob claim the location");
    }
    String ownerUid = existing.path("uid").asText(null);
    if (Objects.equals(uid, ownerUid)) {
      return;
    }
    throw new BadInputException(
        "checkpoints.uri "
            + locationUri
            + " belongs to FineTuneJob "
            + existing.path("namespace").asText("?")
            + "/"
            + existing.path("name").asText("?")
            + " (uid "
            + ownerUid
            + "); give this job its own checkpoints.uri, or delete "
            + locationUri
            + KEY
            + " to take the location over deliberately");
  }
}
