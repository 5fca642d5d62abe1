package io.kubetune.trainer.storage;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.api.trainer.TrainerConfig;
import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Brings {@code s3://} inputs of a training run to local files before it starts, and sends the
 * exported result to its {@code s3://} output after it finished. The training code itself only sees
 * local paths. {@code file://} URIs pass through unchanged.
 *
 * <p>Inputs: the base model folder (every object under its prefix), the training and validation
 * files. Output: every file of the local output folder, uploaded under {@code output.uri}; the
 * weights first and {@code metrics.json} last, so a reader that sees metrics.json sees the rest.
 */
public final class TrainingStaging implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final TrainerConfig original;
  private final TrainerConfig local;
  private final StorageSettings settings;
  private final Path localOutput;
  private final Path workDir;

  private TrainingStaging(
      TrainerConfig original,
      TrainerConfig local,
      StorageSettings settings,
      Path localOutput,
      Path workDir) {
    this.original = original;
    this.local = local;
    this.settings = settings;
    this.localOutput = localOutput;
    this.workDir = workDir;
  }

  /**
   * Downloads the {@code s3://} inputs under {@code workDir} and returns a staging whose {@link
   * #localConfig()} names only local files.
   *
   * @throws BadInputException when an input object does not exist (naming the field and URI)
   */
  public static TrainingStaging prepare(
      TrainerConfig config, Path workDir, StorageSettings settings) throws IOException {
    TrainerConfig local = JSON.convertValue(config, TrainerConfig.class);
    local.baseModel.uri =
        stageFolder("baseModel.uri", config.baseModel.uri, workDir.resolve("model"), settings);
    local.dataset.train =
        stageFile("dataset.train", config.dataset.train, workDir.resolve("data"), settings);
    if (config.dataset.validation != null) {
      local.dataset.validation =
          stageFile(
              "dataset.validation", config.dataset.validation, workDir.resolve("data"), settings);
    }
    Path localOutput = null;
    if (isS3(config.output.uri)) {
      localOutput = workDir.resolve("output");
      Files.createDirectories(localOutput);
      local.output.uri = localOutput.toUri().toString();
    }
    return new TrainingStaging(config, local, settings, localOutput, workDir);
  }

  /** The config with local {@code file://} URIs, for the training code. */
  public TrainerConfig localConfig() {
    return local;
  }

  /** Uploads the exported result when the output is in object storage; no-op otherwise. */
  public void publishOutput() throws IOException {
    if (localOutput == null) {
      return;
    }
    List<Path> files;
    try (Stream<Path> walk = Files.walk(localOutput)) {
      files =
          walk.filter(Files::isRegularFile)
              .sorted(
                  (a, b) -> {
                    // metrics.json last: its presence means the result is complete.
                    boolean am = a.getFileName().toString().equals("metrics.json");
                    boolean bm = b.getFileName().toString().equals("metrics.json");
                    return am == bm ? a.compareTo(b) : am ? 1 : -1;
                  })
              .toList();
    }
    try (ObjectStore store = ObjectStores.forUri(folder(original.output.uri), settings)) {
      for (Path file : files) {
        store.put(localOutput.relativize(file).toString().replace('\\', '/'), file);
      }
    } catch (NoSuchBucketException e) {
      throw inField("output.uri", original.output.uri, e);
    }
  }

  /** Deletes the downloaded inputs and the local copy of the output. */
  @Override
  public void close() throws IOException {
    if (!Files.exists(workDir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(workDir)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private static String stageFolder(String field, String uri, Path target, StorageSettings settings)
      throws IOException {
    if (!isS3(uri)) {
      return uri;
    }
    downloadFolder(field, uri, target, settings);
    return target.toUri().toString();
  }

  /**
   * Downloads every object under the s3:// folder {@code uri} into {@code target}; {@code field}
   * names the setting in the error when the folder is empty. Serving reuses it for models and
   * adapters.
   */
  public static void downloadFolder(String field, String uri, Path target, StorageSettings settings)
      throws IOException {
    try (ObjectStore store = ObjectStores.forUri(folder(uri), settings)) {
      List<ObjectInfo> objects = store.list("", true);
      if (objects.isEmpty()) {
        throw new BadInputException(
            field + " " + uri + " holds no objects; upload the model folder or fix the URI");
      }
      for (ObjectInfo object : objects) {
        store.get(object.key(), target.resolve(object.key()));
      }
    } catch (NoSuchBucketException e) {
      throw inField(field, uri, e);
    }
  }

  private static String stageFile(
      String field, String uri, Path targetDir, StorageSettings settings) throws IOException {
    if (!isS3(uri)) {
      return uri;
    }
    int slash = uri.lastIndexOf('/');
    String parent = uri.substring(0, slash + 1);
    String name = uri.substring(slash + 1);
    Path target = targetDir.resolve(field.replace('.', '-') + "-" + name);
    try (ObjectStore store = ObjectStores.forUri(parent, settings)) {
      store.get(name, target);
    } catch (ObjectNotFoundException e) {
      throw new BadInputException(field + " " + uri + " does not exist; upload it or fix the URI");
    } catch (NoSuchBucketException e) {
      throw inField(field, uri, e);
    }
    return target.toUri().toString();
  }

  /** The store's refusal with the field that held the URI in front. */
  public static BadInputException inField(String field, String uri, NoSuchBucketException e) {
    return new BadInputException(field + " " + uri + ": " + e.getMessage(), e);
  }

  private static boolean isS3(String uri) {
    return uri != null && uri.startsWith("s3://");
  }

  private static String folder(String uri) {
    return uri.endsWith("/") ? uri : uri + "/";
  }
}
