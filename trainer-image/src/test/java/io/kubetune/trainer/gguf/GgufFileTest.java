package io.kubetune.trainer.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kubetune.trainer.BadInputException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The GGUF reader on hand-written files: layout, metadata types, and refusals of bad input. */
class GgufFileTest {
  @TempDir Path dir;

  private static GgufBytes small() {
    return new GgufBytes()
        .put("general.architecture", "llama")
        .put("some.count", 7)
        .put("some.eps", 1e-5f)
        .put("some.flag", true)
        .put("some.names", List.of("a", "Ġb"))
        .put("some.ids", List.of(3, -1))
        .f32("w", new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
  }

  @Test
  void readsMetadataAndTensors() throws Exception {
    try (GgufFile gguf = GgufFile.open(small().write(dir.resolve("ok.gguf")))) {
      assertThat(gguf.version()).isEqualTo(3);
      assertThat(gguf.string("general.architecture")).isEqualTo("llama");
      assertThat(gguf.integer("some.count")).isEqualTo(7);
      // A FLOAT32 comes back as the decimal that was written, not its binary expansion.
      assertThat(gguf.decimal("some.eps")).isEqualTo(1e-5);
      assertThat(gguf.bool("some.flag")).isTrue();
      assertThat(gguf.strings("some.names")).containsExactly("a", "Ġb");
      assertThat(gguf.integers("some.ids")).containsExactly(3, -1);
      GgufFile.TensorInfo w = gguf.tensors().get("w");
      assertThat(w.type()).isEqualTo(GgmlType.F32);
      assertThat(w.torchShape()).containsExactly(2, 3);
      assertThat(gguf.dequantize(w)).containsExactly(1, 2, 3, 4, 5, 6);
      assertThatThrownBy(() -> gguf.string("some.count"))
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining("some.count")
          .hasMessageContaining("must be a string");
      assertThatThrownBy(() -> gguf.integer("missing.key"))
          .hasMessageContaining("'missing.key' is missing");
    }
  }

  @Test
  void refusesAFileThatIsNotGguf() throws Exception {
    GgufBytes bytes = small();
    bytes.magic = 0x464C457F; // an ELF binary
    Path file = bytes.write(dir.resolve("elf.gguf"));
    assertThatThrownBy(() -> GgufFile.open(file))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining(file.toString())
        .hasMessageContaining("bad magic");
  }

  @Test
  void refusesVersion1() throws Exception {
    GgufBytes bytes = small();
    bytes.version = 1;
    Path file = bytes.write(dir.resolve("v1.gguf"));
    assertThatThrownBy(() -> GgufFile.open(file))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("unsupported GGUF version 1");
  }

  @Test
  void refusesATruncatedFileWhereverItIsCut() throws Exception {
    byte[] whole = small().bytes();
    // Cuts in the header, the metadata, the tensor infos and the tensor data.
    for (int length : new int[] {0, 3, 10, 30, 90, 200, whole.length - 40, whole.length - 9}) {
      Path file = dir.resolve("cut-" + length + ".gguf");
      Files.write(file, Arrays.copyOf(whole, length));
      assertThatThrownBy(() -> GgufFile.open(file))
          .as("cut at %d of %d bytes", length, whole.length)
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining(file.toString())
          .hasMessageContaining("truncated");
    }
  }

  @Test
  void refusesAnUnknownTensorType() throws Exception {
    Path file =
        new GgufBytes()
            .put("general.architecture", "llama")
            .raw("blk.0.attn_q.weight", 99, new byte[64], 16)
            .write(dir.resolve("unknown.gguf"));
    assertThatThrownBy(() -> GgufFile.open(file))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("tensor blk.0.attn_q.weight has unknown ggml type id 99");
  }

  @Test
  void refusesToDequantizeATypeItDoesNotImplementNamingTensorAndType() throws Exception {
    Path file =
        new GgufBytes()
            .put("general.architecture", "llama")
            .raw("blk.3.ffn_down.weight", GgmlType.Q6_K.id, new byte[210], 256)
            .write(dir.resolve("q6k.gguf"));
    try (GgufFile gguf = GgufFile.open(file)) {
      GgufFile.TensorInfo tensor = gguf.tensors().get("blk.3.ffn_down.weight");
      assertThat(tensor.type()).isEqualTo(GgmlType.Q6_K);
      assertThatThrownBy(() -> gguf.dequantize(tensor))
          .isInstanceOf(BadInputException.class)
          .hasMessageContaining(file.toString())
          .hasMessageContaining("tensor blk.3.ffn_down.weight is Q6_K")
          .hasMessageContaining("Q4_1");
    }
  }

  @Test
  void refusesRowsThatAreNotWholeBlocks() throws Exception {
    Path file =
        new GgufBytes()
            .put("general.architecture", "llama")
            .raw("w", GgmlType.Q8_0.id, new byte[34], 16, 2)
            .write(dir.resolve("partial.gguf"));
    assertThatThrownBy(() -> GgufFile.open(file))
        .hasMessageContaining("not a multiple of the Q8_0 block size 32");
  }
}
