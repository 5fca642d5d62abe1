package io.kubetune.operator;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kubetune.api.v1alpha1.FineTuneJob;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Test fixtures: the repository's examples and a minimal valid FineTuneJob. */
public final class TestResources {
  public static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private TestResources() {}

  public static Path repoRoot() {
    String configured = System.getProperty("kubetune.repoRoot");
    if (configured != null && Files.isDirectory(Path.of(configured, "crds"))) {
      return Path.of(configured);
    }
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isDirectory(dir.resolve("crds"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      throw new IllegalStateException("cannot find the repository root (a folder with crds/)");
    }
    return dir;
  }

  /** Installs the committed CRD into a (mock) API server, as kubectl apply -f crds/ would. */
  public static void installCrd(io.fabric8.kubernetes.client.KubernetesClient client) {
    try (java.io.InputStream crd =
        Files.newInputStream(repoRoot().resolve("crds/finetunejobs.kubetune.io-v1.yml"))) {
      client
          .apiextensions()
          .v1()
          .customResourceDefinitions()
          .resource(
              client
                  .getKubernetesSerialization()
                  .unmarshal(
                      crd,
                      io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition
                          .class))
          .createOr(existing -> existing.update());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** An example from examples/, with a namespace and uid as the API server would set them. */
  public static FineTuneJob example(String fileName) {
    try {
      FineTuneJob job =
          YAML.readValue(
              repoRoot().resolve("examples").resolve(fileName).toFile(), FineTuneJob.class);
      if (job.getMetadata().getNamespace() == null) {
        job.getMetadata().setNamespace("default");
      }
      job.getMetadata().setUid("11111111-2222-3333-4444-555555555555");
      job.getMetadata().setGeneration(1L);
      return job;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The smallest valid FineTuneJob: LoRA with every default. */
  public static FineTuneJob minimal(String name) {
    String yaml =
        """
        apiVersion: kubetune.io/v1alpha1
        kind: FineTuneJob
        metadata:
          name: %s
          namespace: default
        spec:
          baseModel:
            uri: s3://models/tiny/
          dataset:
            train: s3://data/train.jsonl
            validationSplit: 0.1
            format: completion
          method:
            type: LoRA
          checkpoints:
            uri: s3://checkpoints/%s/
        """
            .formatted(name, name);
    try {
      FineTuneJob job = YAML.readValue(yaml, FineTuneJob.class);
      job.getMetadata().setUid("uid-" + name);
      job.getMetadata().setGeneration(1L);
      return job;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
