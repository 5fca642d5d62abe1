package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class PathTranslationTest {
  @Test
  void translatesWholeMountPathsOnceAndLongestFirst() {
    PathTranslation t = new PathTranslation();
    t.add("/tmp", Path.of("/tmp/state/pod/tmp"));
    t.add("/etc/kubetune", Path.of("/tmp/state/pod/config"));
    t.add("/var/run/kubetune/pvc/data", Path.of("/home/me/examples"));
    t.add("/var/run/kubetune/pvc/data/models", Path.of("/models"));

    assertThat(t.apply("/etc/kubetune/trainer-config.json"))
        .isEqualTo("/tmp/state/pod/config/trainer-config.json");
    // The replacement itself starts with /tmp: it must not be translated again.
    assertThat(t.apply("/tmp")).isEqualTo("/tmp/state/pod/tmp");
    assertThat(t.apply("{\"uri\" : \"file:///var/run/kubetune/pvc/data/train.jsonl\"}"))
        .isEqualTo("{\"uri\" : \"file:///home/me/examples/train.jsonl\"}");
    assertThat(t.apply("file:///var/run/kubetune/pvc/data/models/tiny/"))
        .isEqualTo("file:///models/tiny/");
    // Not a whole path: left alone.
    assertThat(t.apply("/tmpfiles/x")).isEqualTo("/tmpfiles/x");
    assertThat(t.apply("/work/tmp/x")).isEqualTo("/work/tmp/x");
  }

  @Test
  void reverseGivesTheContainerPathsBackForWhatTheProcessPrints() {
    PathTranslation t = new PathTranslation();
    t.add("/var/run/kubetune/pvc/scratch", Path.of("/home/me/.kubetune/pvc/scratch"));
    t.add("/tmp", Path.of("/home/me/.kubetune/pods/p/tmp"));
    assertThat(
            t.reverse(
                "{\"event\":\"checkpoint\",\"uri\":\"file:///home/me/.kubetune/pvc/scratch/job/step-1/\"}"))
        .isEqualTo(
            "{\"event\":\"checkpoint\",\"uri\":\"file:///var/run/kubetune/pvc/scratch/job/step-1/\"}");
    assertThat(t.reverse(t.apply("/tmp/x and /var/run/kubetune/pvc/scratch/y")))
        .isEqualTo("/tmp/x and /var/run/kubetune/pvc/scratch/y");
  }
}
