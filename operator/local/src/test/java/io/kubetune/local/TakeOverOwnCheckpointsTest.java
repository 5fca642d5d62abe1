package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.kubetune.api.TrainerLayout;
import io.kubetune.api.v1alpha1.FineTuneJob;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Running the same FineTuneJob again in local mode resumes its checkpoints (a deliberate take-over
 * of its own earlier run, which had another uid); another job's location stays refused.
 */
class TakeOverOwnCheckpointsTest {
  @TempDir Path dir;

  @Test
  void theMarkerOfThisJobIsRemovedAndAnotherJobsIsKept() throws Exception {
    FineTuneJob job =
        KubeTuneLocal.readFineTuneJob(
            KubeTuneLocal.repoRoot().resolve("examples/quickstart.yaml"),
            KubeTuneLocal.repoRoot(),
            System.out);
    job.getMetadata().setNamespace("default");
    job.getSpec().checkpoints.uri = "pvc://work/runs/a";
    Map<String, Path> claims = Map.of("work", dir);
    Path marker = dir.resolve("runs/a").resolve(TrainerLayout.OWNER_MARKER);
    Files.createDirectories(marker.getParent());

    Files.writeString(
        marker,
        "{\"namespace\":\"default\",\"name\":\"someone-else\",\"uid\":\"u0\"}",
        StandardCharsets.UTF_8);
    KubeTuneLocal.takeOverOwnCheckpoints(job, claims, dir, null, System.out);
    assertThat(marker).exists();

    Files.writeString(
        marker,
        "{\"namespace\":\"default\",\"name\":\""
            + job.getMetadata().getName()
            + "\",\"uid\":\"earlier-run\"}",
        StandardCharsets.UTF_8);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    KubeTuneLocal.takeOverOwnCheckpoints(
        job, claims, dir, null, new PrintStream(out, true, StandardCharsets.UTF_8));
    assertThat(marker).doesNotExist();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("resuming");
  }
}
