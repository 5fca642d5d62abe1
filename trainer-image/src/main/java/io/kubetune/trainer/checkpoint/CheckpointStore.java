package io.kubetune.trainer.checkpoint;

import io.kubetune.trainer.storage.Keys;
import io.kubetune.trainer.storage.ObjectInfo;
import io.kubetune.trainer.storage.ObjectNotFoundException;
import io.kubetune.trainer.storage.ObjectStore;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checkpoints in an {@link ObjectStore} rooted at the checkpoints URI.
 *
 * <p>Layout: {@code step-000000120/<attempt>/<file>} for the files, {@code
 * step-000000120/manifest.json} written last with {@code putIfAbsent}. A folder without a manifest
 * (an interrupted commit or deletion) does not exist for readers. Verification checks the manifest,
 * the revision, and every file's size and SHA-256 (hashed while streaming from a downloaded copy).
 */
public final class CheckpointStore {
  /**
   * Reason prefix of a folder skipped because an earlier training revision wrote it (a run before a
   * restartNonce): expected, not damage, so the trainer does not report it as a warning.
   */
  public static final String OTHER_REVISION = "written by training revision ";

  private static final Logger LOG = LoggerFactory.getLogger(CheckpointStore.class);
  static final String MANIFEST = "manifest.json";
  private static final Pattern STEP_FOLDER = Pattern.compile("step-(\\d{9,18})/");

  /**
   * The keys a commit writes: a step folder's manifest and the files of an attempt (8 hex digits).
   * Prune deletes nothing else, so a file a user put under {@code checkpoints.uri} survives.
   */
  private static final Pattern WRITTEN_BY_COMMIT =
      Pattern.compile("step-\\d{9,18}/(" + Pattern.quote(MANIFEST) + "|[0-9a-f]{8}/.+)");

  private final ObjectStore store;
  private final Path scratch;

  /**
   * @param store rooted at the checkpoints URI
   * @param scratch local folder for verification downloads (each removed after use)
   */
  public CheckpointStore(ObjectStore store, Path scratch) {
    this.store = store;
    this.scratch = scratch;
  }

  public CheckpointStore(ObjectStore store) throws IOException {
    this(store, Files.createTempDirectory("kubetune-checkpoints-"));
  }

  /** The folder key of a step, zero-padded so keys sort by step: {@code step-000000120/}. */
  public static String folderOf(long step) {
    if (step < 0) {
      throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
    return String.format("step-%09d/", step);
  }

  // ---------------------------------------------------------------- commit

  /**
   * Uploads {@code files} (name relative to the checkpoint, local file) and then, last, the
   * manifest with {@code putIfAbsent}. If a manifest already exists for {@code step} (checked
   * before uploading and again atomically by the manifest write), the commit loses: nothing
   * committed is changed and this attempt's uploads are removed (best effort).
   */
  public CommitResult commit(long step, Map<String, Path> files, CheckpointMetadata meta)
      throws IOException {
    String folder = folderOf(step);
    String manifestKey = folder + MANIFEST;
    TreeMap<String, Path> sorted = new TreeMap<>(files);
    for (Map.Entry<String, Path> e : sorted.entrySet()) {
      checkName(e.getKey());
      // The store's key rules too (e.g. no percent-encoding), before anything is uploaded.
      Keys.checkKey(folder + "00000000/" + e.getKey(), store.root().toString());
      if (!Files.isRegularFile(e.getValue())) {
        throw new IOException(
            "checkpoint step " + step + ": " + e.getValue() + " is not a regular file");
      }
    }
    if (store.exists(manifestKey)) {
      if (!supersededRevision(step, manifestKey, meta.trainingRevision())) {
        return lost(step, folder, "a manifest already exists (checked before uploading)");
      }
      // A run of an earlier training revision (before a restartNonce or spec change) used the same
      // checkpoints.uri: its checkpoint can never be resumed by this run, and keeping its manifest
      // would block every commit of this run at the same steps. Withdraw it; its files become an
      // orphan attempt that prune removes.
      LOG.warn(
          "Checkpoint step {}: replacing the checkpoint of a superseded training revision at {}",
          step,
          store.root().resolve(manifestKey));
      store.delete(manifestKey);
    }
    String attempt = UUID.randomUUID().toString().substring(0, 8);
    List<Manifest.FileEntry> entries = new ArrayList<>();
    List<String> uploaded = new ArrayList<>();
    for (Map.Entry<String, Path> e : sorted.entrySet()) {
      Path file = e.getValue();
      long size = Files.size(file);
      // Hash while the upload reads the same file (page cache), so the hash costs no extra time.
      CompletableFuture<String> hash = CompletableFuture.supplyAsync(() -> sha256Unchecked(file));
      String key = folder + attempt + "/" + e.getKey();
      store.put(key, file);
      uploaded.add(key);
      String sha;
      try {
        sha = hash.join();
      } catch (CompletionException ex) {
        throw new IOException("checkpoint step " + step + ": cannot read " + file, ex.getCause());
      }
      if (Files.size(file) != size) {
        throw new IOException(
            "checkpoint step " + step + ": " + file + " changed while it was being uploaded");
      }
      entries.add(new Manifest.FileEntry(e.getKey(), size, sha));
    }
    Manifest manifest =
        new Manifest(
            Manifest.FORMAT_VERSION,
            step,
            meta.time().toString(),
            meta.trainingRevision(),
            attempt,
            meta.metrics(),
            entries);
    if (!store.putIfAbsent(manifestKey, manifest.toJson())) {
      try {
        store.delete(uploaded);
      } catch (IOException e) {
        LOG.warn(
            "Checkpoint step {}: could not remove the losing attempt {} ({}); prune removes it",
            step,
            attempt,
            e.getMessage());
      }
      return lost(step, folder, "another writer committed this step first (manifest exists)");
    }
    Checkpoint cp = new Checkpoint(step, folder, store.root().child(folder).toString(), manifest);
    LOG.info("Checkpoint step {} committed: {} files at {}", step, entries.size(), cp.uri());
    return new CommitResult(true, step, cp, "committed");
  }

  private CommitResult lost(long step, String folder, String why) {
    String message =
        "Checkpoint step "
            + step
            + " not committed: "
            + why
            + " at "
            + store.root().resolve(folder + MANIFEST)
            + "; the committed checkpoint is left unchanged (a newer pod probably owns this job,"
            + " or it is one that failed verification at resume; newer steps are unaffected)";
    LOG.warn(message);
    return new CommitResult(false, step, null, message);
  }

  // ---------------------------------------------------------------- read

  /** The newest intact checkpoint written by {@code trainingRevision}, or empty. */
  public Optional<Checkpoint> latestValid(String trainingRevision) throws IOException {
    return scan(trainingRevision).latest();
  }

  /**
   * Walks step folders newest-first and returns the first intact checkpoint of {@code
   * trainingRevision}, with every newer folder it skipped and why (each also logged).
   */
  public Scan scan(String trainingRevision) throws IOException {
    return scan(trainingRevision, null);
  }

  private Scan scan(String trainingRevision, Path into) throws IOException {
    return scan(trainingRevision, into, Long.MAX_VALUE);
  }

  private Scan scan(String trainingRevision, Path into, long below) throws IOException {
    List<Skipped> skipped = new ArrayList<>();
    List<Long> steps = new ArrayList<>(stepFolders());
    steps.sort(Comparator.reverseOrder());
    for (long step : steps) {
      if (step >= below) {
        continue;
      }
      try {
        Checkpoint cp = readManifest(step);
        if (!cp.trainingRevision().equals(trainingRevision)) {
          throw new CorruptCheckpointException(
              step, OTHER_REVISION + cp.trainingRevision() + ", this run is " + trainingRevision);
        }
        verify(cp, into);
        return new Scan(Optional.of(cp), skipped);
      } catch (CorruptCheckpointException e) {
        String uri = store.root().child(folderOf(step)).toString();
        LOG.warn("Skipping checkpoint step {} at {}: {}", step, uri, e.reason());
        skipped.add(new Skipped(step, uri, e.reason()));
      }
    }
    return new Scan(Optional.empty(), skipped);
  }

  /**
   * The intact checkpoint of {@code trainingRevision} that is best by {@code metric} (ties: the
   * newer step; checkpoints without the metric do not compete), downloaded and verified into {@code
   * localDir}; a corrupt candidate is skipped (logged) for the next best. The same ranking as the
   * retention in {@link #prune}, which always keeps this checkpoint.
   */
  public Optional<Checkpoint> restoreBest(
      String trainingRevision, String metric, boolean higherIsBetter, Path localDir)
      throws IOException {
    List<Checkpoint> candidates = new ArrayList<>();
    for (long step : stepFolders()) {
      try {
        Checkpoint cp = readManifest(step);
        if (cp.trainingRevision().equals(trainingRevision)
            && cp.metrics().get(metric) != null
            && !cp.metrics().get(metric).isNaN()) {
          candidates.add(cp);
        }
      } catch (CorruptCheckpointException e) {
        LOG.info("Best checkpoint: step {} is not a checkpoint: {}", step, e.reason());
      }
    }
    Comparator<Checkpoint> byMetric =
        Comparator.comparingDouble((Checkpoint c) -> c.metrics().get(metric));
    if (!higherIsBetter) {
      byMetric = byMetric.reversed();
    }
    candidates.sort(byMetric.thenComparingLong(Checkpoint::step).reversed());
    for (Checkpoint cp : candidates) {
      try {
        verify(cp, localDir);
        return Optional.of(cp);
      } catch (CorruptCheckpointException e) {
        LOG.warn("Best checkpoint: step {} fails verification: {}", cp.step(), e.reason());
      }
    }
    return Optional.empty();
  }

  /**
   * Like {@link #scan} followed by {@link #download}, in one pass: each candidate, newest first, is
   * downloaded into {@code localDir} and verified there; a corrupt one is removed from {@code
   * localDir} and the next older one tried. Use it to resume (each file is fetched once).
   */
  public Scan restoreLatest(String trainingRevision, Path localDir) throws IOException {
    return scan(trainingRevision, localDir, Long.MAX_VALUE);
  }

  /**
   * Like {@link #restoreLatest(String, Path)} among the steps below {@code below}: the next older
   * candidate after one that verified but could not be read.
   */
  public Scan restoreLatest(String trainingRevision, Path localDir, long below) throws IOException {
    return scan(trainingRevision, localDir, below);
  }

  /**
   * Withdraws the manifest of {@code step} (if any), so the step is no checkpoint any more and can
   * be committed again; its files become an orphan attempt that {@link #prune} removes. For a
   * checkpoint of this run's revision that was rejected at resume: the run trains that step again,
   * and a rejected manifest left in place would make its new commit lose.
   */
  public void withdraw(long step) throws IOException {
    String key = folderOf(step) + MANIFEST;
    LOG.warn("Withdrawing the rejected checkpoint step {} ({})", step, store.root().resolve(key));
    store.delete(key);
  }

  /**
   * Downloads the files of {@code checkpoint} into {@code localDir} (by their names) and verifies
   * each size and SHA-256; on a mismatch the downloaded files are removed.
   *
   * @throws CorruptCheckpointException if a file is missing or does not match the manifest
   */
  public void download(Checkpoint checkpoint, Path localDir) throws IOException {
    verify(checkpoint, localDir);
  }

  /** True when the committed manifest at {@code key} names another training revision. */
  private boolean supersededRevision(long step, String key, String revision) throws IOException {
    try {
      Manifest existing = Manifest.parse(store.getBytes(key));
      return existing.step() == step
          && !java.util.Objects.equals(existing.trainingRevision(), revision);
    } catch (ObjectNotFoundException gone) {
      return false;
    } catch (IOException unparseable) {
      return false; // not ours to judge: left to prune and verification
    }
  }

  /** Reads and parses the manifest of {@code step}; file checks are left to {@link #verify}. */
  private Checkpoint readManifest(long step) throws IOException {
    String folder = folderOf(step);
    byte[] json;
    try {
      json = store.getBytes(folder + MANIFEST);
    } catch (ObjectNotFoundException e) {
      throw new CorruptCheckpointException(
          step, "no manifest.json (partial commit or interrupted deletion)");
    }
    Manifest m;
    try {
      m = Manifest.parse(json);
    } catch (IOException e) {
      throw new CorruptCheckpointException(step, e.getMessage());
    }
    if (m.step() != step) {
      throw new CorruptCheckpointException(
          step, "manifest says step " + m.step() + " but sits in " + folder);
    }
    for (Manifest.FileEntry f : m.files()) {
      try {
        checkName(f.name());
      } catch (IllegalArgumentException e) {
        throw new CorruptCheckpointException(step, e.getMessage());
      }
    }
    return new Checkpoint(step, folder, store.root().child(folder).toString(), m);
  }

  /** Sizes from one listing (cheap), without hashing. */
  private void verifySizes(Checkpoint cp, Map<String, Long> listed)
      throws CorruptCheckpointException {
    for (Manifest.FileEntry f : cp.manifest().files()) {
      Long size = listed.get(keyOf(cp, f));
      if (size == null) {
        throw new CorruptCheckpointException(cp.step(), "file " + f.name() + " is missing");
      }
      if (size != f.size()) {
        throw new CorruptCheckpointException(
            cp.step(),
            "size mismatch: file "
                + f.name()
                + " has "
                + size
                + " bytes, manifest says "
                + f.size());
      }
    }
  }

  private Map<String, Long> listSizes(String folder) throws IOException {
    Map<String, Long> sizes = new HashMap<>();
    for (ObjectInfo o : store.list(folder, true)) {
      sizes.put(o.key(), o.size());
    }
    return sizes;
  }

  /**
   * Full verification: sizes from a listing, then every file downloaded and hashed. Into {@code
   * into} (kept when intact) or a scratch folder (always removed).
   */
  private void verify(Checkpoint cp, Path into) throws IOException {
    verifySizes(cp, listSizes(cp.folder()));
    Path dir =
        into != null
            ? into
            : Files.createDirectories(scratch).resolve("verify-" + UUID.randomUUID());
    List<Path> written = new ArrayList<>();
    boolean ok = false;
    try {
      for (Manifest.FileEntry f : cp.manifest().files()) {
        Path target = dir.resolve(f.name()).normalize();
        if (!target.startsWith(dir.normalize())) {
          throw new CorruptCheckpointException(cp.step(), "file name escapes: " + f.name());
        }
        try {
          store.get(keyOf(cp, f), target);
        } catch (ObjectNotFoundException e) {
          throw new CorruptCheckpointException(cp.step(), "file " + f.name() + " is missing");
        }
        written.add(target);
        long size = Files.size(target);
        if (size != f.size()) {
          throw new CorruptCheckpointException(
              cp.step(),
              "size mismatch: file "
                  + f.name()
                  + " has "
                  + size
                  + " bytes, manifest says "
                  + f.size());
        }
        String sha = sha256(target);
        if (!sha.equalsIgnoreCase(f.sha256())) {
          throw new CorruptCheckpointException(
              cp.step(),
              "checksum mismatch: file "
                  + f.name()
                  + " has SHA-256 "
                  + sha
                  + ", manifest says "
                  + f.sha256());
        }
      }
      ok = true;
    } finally {
      if (into == null) {
        deleteTree(dir);
      } else if (!ok) {
        for (Path p : written) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  private static String keyOf(Checkpoint cp, Manifest.FileEntry f) {
    return cp.folder() + cp.manifest().attempt() + "/" + f.name();
  }

  // ---------------------------------------------------------------- retention

  /**
   * Keeps the newest {@code keepLast} valid checkpoints, the best valid one by {@code metric} (if
   * any has it), and every step in {@code pinnedSteps} (never touched, valid or not); deletes the
   * other checkpoints manifest first, then their files, so an interrupted deletion leaves only an
   * invisible folder. Also deletes folders older than the newest valid checkpoint that are orphans
   * (no manifest) or invalid, and stray objects of losing commits inside kept folders. Folders
   * newer than the newest valid checkpoint are left alone (a commit may be in progress).
   *
   * <p>"Valid" here means the manifest parses and every file is present with its size (one listing
   * per folder, no download); in addition the newest checkpoint that passes full SHA-256
   * verification is always kept, so a bit-flipped newest checkpoint cannot push out the last good
   * one.
   */
  public PruneResult prune(
      int keepLast, String metric, boolean higherIsBetter, Set<Long> pinnedSteps)
      throws IOException {
    if (keepLast < 1) {
      throw new IllegalArgumentException("keepLast must be >= 1, got " + keepLast);
    }
    Set<Long> pinned = pinnedSteps == null ? Set.of() : pinnedSteps;
    TreeMap<Long, Checkpoint> valid = new TreeMap<>();
    Map<Long, Map<String, Long>> listings = new HashMap<>();
    Set<Long> orphans = new TreeSet<>();
    Set<Long> invalid = new TreeSet<>();
    for (long step : stepFolders()) {
      Map<String, Long> listed = listSizes(folderOf(step));
      listings.put(step, listed);
      try {
        Checkpoint cp = readManifest(step);
        verifySizes(cp, listed);
        valid.put(step, cp);
      } catch (CorruptCheckpointException e) {
        if (listed.containsKey(folderOf(step) + MANIFEST)) {
          invalid.add(step);
        } else {
          orphans.add(step);
        }
        LOG.info("Prune: step {} is not a valid checkpoint: {}", step, e.reason());
      }
    }
    Set<Long> keep = new TreeSet<>(pinned);
    valid.descendingKeySet().stream().limit(keepLast).forEach(keep::add);
    if (metric != null) {
      Comparator<Checkpoint> byMetric =
          Comparator.comparingDouble((Checkpoint c) -> c.metrics().get(metric));
      if (!higherIsBetter) {
        byMetric = byMetric.reversed();
      }
      // Ties go to the newer step.
      valid.values().stream()
          .filter(c -> c.metrics().containsKey(metric))
          .max(byMetric.thenComparingLong(Checkpoint::step))
          .ifPresent(c -> keep.add(c.step()));
    }
    for (long step : valid.descendingKeySet()) {
      try {
        verify(valid.get(step), null);
        keep.add(step);
        break;
      } catch (CorruptCheckpointException e) {
        LOG.warn("Prune: checkpoint step {} fails verification: {}", step, e.reason());
      }
    }

    long newestValid = valid.isEmpty() ? Long.MIN_VALUE : valid.lastKey();
    TreeSet<Long> deleted = new TreeSet<>();
    TreeSet<Long> deletedInvalid = new TreeSet<>();
    TreeSet<Long> deletedOrphans = new TreeSet<>();
    for (long step : valid.keySet()) {
      if (!keep.contains(step)) {
        deleteCheckpoint(step, listings.get(step));
        deleted.add(step);
      }
    }
    for (long step : invalid) {
      if (step < newestValid && !keep.contains(step)) {
        if (deleteCheckpoint(step, listings.get(step))) {
          deletedInvalid.add(step);
        }
      }
    }
    for (long step : orphans) {
      if (step < newestValid && !keep.contains(step)) {
        if (deleteCheckpoint(step, listings.get(step))) {
          deletedOrphans.add(step);
        }
      }
    }
    int strays = 0;
    for (long step : keep) {
      Checkpoint cp = valid.get(step);
      if (cp == null) {
        continue;
      }
      Set<String> referenced = new HashSet<>();
      referenced.add(cp.folder() + MANIFEST);
      cp.manifest().files().forEach(f -> referenced.add(keyOf(cp, f)));
      List<String> stray =
          listings.get(step).keySet().stream()
              .filter(k -> !referenced.contains(k) && writtenByCommit(k))
              .toList();
      if (!stray.isEmpty()) {
        store.delete(stray);
        strays += stray.size();
      }
    }
    TreeSet<Long> kept = new TreeSet<>(valid.keySet());
    kept.retainAll(keep);
    if (!deleted.isEmpty() || !deletedInvalid.isEmpty() || !deletedOrphans.isEmpty()) {
      LOG.info(
          "Prune: kept {}, deleted {}, invalid deleted {}, orphans deleted {}, pinned {}",
          kept,
          deleted,
          deletedInvalid,
          deletedOrphans,
          pinned);
    }
    return new PruneResult(kept, deleted, deletedInvalid, deletedOrphans, strays);
  }

  /**
   * Manifest first (the checkpoint disappears at once), then the files. Returns false when the
   * folder held nothing a commit writes (e.g. only a user's file, which stays).
   */
  private boolean deleteCheckpoint(long step, Map<String, Long> listed) throws IOException {
    String manifestKey = folderOf(step) + MANIFEST;
    if (listed.keySet().stream().noneMatch(CheckpointStore::writtenByCommit)) {
      return false;
    }
    store.delete(manifestKey);
    List<String> rest =
        listed.keySet().stream()
            .filter(k -> !k.equals(manifestKey) && writtenByCommit(k))
            .sorted()
            .toList();
    if (!rest.isEmpty()) {
      store.delete(rest);
    }
    return true;
  }

  /** True for the keys a commit writes; prune never deletes any other (see WRITTEN_BY_COMMIT). */
  static boolean writtenByCommit(String key) {
    return WRITTEN_BY_COMMIT.matcher(key).matches();
  }

  // ---------------------------------------------------------------- helpers

  /** Steps that have a folder, in ascending order. */
  private List<Long> stepFolders() throws IOException {
    List<Long> steps = new ArrayList<>();
    for (ObjectInfo o : store.list("step-", false)) {
      Matcher m = STEP_FOLDER.matcher(o.key());
      if (o.folder() && m.matches()) {
        steps.add(Long.parseLong(m.group(1)));
      }
    }
    steps.sort(null);
    return steps;
  }

  private static void checkName(String name) {
    if (name == null
        || name.isEmpty()
        || name.startsWith("/")
        || name.contains("\\")
        || name.endsWith("/")
        || Stream.of(name.split("/", -1))
            .anyMatch(s -> s.isEmpty() || s.equals(".") || s.equals(".."))) {
      throw new IllegalArgumentException(
          "invalid checkpoint file name \""
              + name
              + "\": use a relative name of '/'-separated parts without '.', '..' or empty parts");
    }
  }

  static String sha256(Path file) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
      in.transferTo(OutputStream.nullOutputStream());
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  private static String sha256Unchecked(Path file) {
    try {
      return sha256(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
