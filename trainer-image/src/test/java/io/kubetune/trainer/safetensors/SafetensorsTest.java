package io.kubetune.trainer.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.Python;
import io.kubetune.trainer.safetensors.Safetensors.DType;
import io.kubetune.trainer.safetensors.Safetensors.FloatTensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {

  private static final Path SCRIPT =
      Paths.get("src/test/resources/safetensors/independent_safetensors.py");

  @TempDir Path dir;

  @Test
  void writtenFilesAreReadableByOtherUsers() throws Exception {
    Path file = dir.resolve("shared.safetensors");
    Safetensors.writeFloats(file, Map.of("w", new FloatTensor(new long[] {2}, ramp(2))));
    if (file.getFileSystem().supportedFileAttributeViews().contains("posix")) {
      assertThat(Files.getPosixFilePermissions(file))
          .contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ);
    }
  }

  @Test
  void roundTripKeepsNamesShapesValuesAndOrder() throws Exception {
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    tensors.put("model.embed_tokens.weight", new FloatTensor(new long[] {3, 2}, ramp(6)));
    tensors.put("model.norm.weight", new FloatTensor(new long[] {5}, ramp(5)));
    tensors.put("scalar", new FloatTensor(new long[] {}, new float[] {42f}));
    Path file = dir.resolve("model.safetensors");

    Safetensors.writeFloats(file, tensors);

    byte[] raw = Files.readAllBytes(file);
    long headerLength = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertThat(headerLength % 8).as("header padded to 8 bytes").isZero();
    assertThat(raw.length).isEqualTo(8 + headerLength + 4 * (6 + 5 + 1));
    try (Safetensors.Reader reader = Safetensors.open(file)) {
      assertThat(reader.tensors().keySet())
          .containsExactly("model.embed_tokens.weight", "model.norm.weight", "scalar");
      assertThat(reader.metadata()).containsEntry("format", "pt");
      assertThat(reader.info("model.embed_tokens.weight").shape()).containsExactly(3, 2);
      assertThat(reader.info("scalar").shape()).isEmpty();
      assertThat(reader.readFloats("model.embed_tokens.weight")).containsExactly(ramp(6));
      assertThat(reader.readFloats("model.norm.weight")).containsExactly(ramp(5));
      assertThat(reader.readFloats("scalar")).containsExactly(42f);
    }
  }

  @Test
  void readsF32F16AndBf16WrittenByAnIndependentWriter() throws Exception {
    Path file = dir.resolve("numpy.safetensors");
    Python.Result result = Python.run(SCRIPT.toString(), "write", file.toString());
    assertThat(result.exitCode()).as(result.stderr()).isZero();

    try (Safetensors.Reader reader = Safetensors.open(file)) {
      assertThat(reader.info("model.layers.0.weight").dtype()).isEqualTo(DType.F32);
      assertThat(reader.info("model.layers.0.weight").shape()).containsExactly(2, 3, 4);
      float[] f32 = reader.readFloats("model.layers.0.weight");
      for (int i = 0; i < 24; i++) {
        assertThat(f32[i]).isEqualTo((i - 11.5f) / 7.0f, within(1e-6f));
      }
      assertThat(reader.info("half").dtype()).isEqualTo(DType.F16);
      assertThat(reader.readFloats("half"))
          .containsExactly(0.5f, -1.25f, 65504f, 6.097555e-05f, 0f, -3f);
      assertThat(reader.info("brain").dtype()).isEqualTo(DType.BF16);
      assertThat(reader.readFloats("brain"))
          .containsExactly(1.0f, -2.5f, 3.140625f, bf16Truncated(1e-3f), bf16Truncated(1e30f));
    }
  }

  @Test
  void filesWrittenHereAreReadByTheIndependentChecker() throws Exception {
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    tensors.put("a.weight", new FloatTensor(new long[] {2, 3}, ramp(6)));
    tensors.put("b", new FloatTensor(new long[] {1}, new float[] {-0.25f}));
    Path file = dir.resolve("java.safetensors");
    Safetensors.writeFloats(file, tensors);

    Python.Result result = Python.run(SCRIPT.toString(), "check", file.toString());

    assertThat(result.exitCode()).as(result.stderr()).isZero();
    JsonNode parsed = new ObjectMapper().readTree(result.stdout());
    assertThat(parsed.get("a.weight").get("shape").toString()).isEqualTo("[2,3]");
    assertThat(parsed.get("a.weight").get("values").get(5).floatValue()).isEqualTo(ramp(6)[5]);
    assertThat(parsed.get("b").get("values").get(0).floatValue()).isEqualTo(-0.25f);
  }

  @Test
  void rejectsNonContiguousOffsetsAndTruncatedFiles() throws Exception {
    Path gap = dir.resolve("gap.safetensors");
    writeRaw(gap, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
    assertThatThrownBy(() -> Safetensors.open(gap))
        .isInstanceOf(Safetensors.FormatException.class)
        .hasMessageContaining("gap.safetensors")
        .hasMessageContaining("starts at 4");

    Path truncated = dir.resolve("short.safetensors");
    writeRaw(
        truncated,
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
        new byte[8]);
    assertThatThrownBy(() -> Safetensors.open(truncated))
        .isInstanceOf(Safetensors.FormatException.class)
        .hasMessageContaining("data area has 8");
  }

  @Test
  void aNonIntegerShapeOrOffsetIsAFormatErrorNamingTheTensor() throws Exception {
    Path shape = dir.resolve("shape.safetensors");
    writeRaw(
        shape,
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,\"x\"],\"data_offsets\":[0,8]}}",
        new byte[8]);
    assertThatThrownBy(() -> Safetensors.open(shape))
        .isInstanceOf(Safetensors.FormatException.class)
        .hasMessage(
            shape
                + " is not a valid safetensors file: tensor a has a non-integer shape element"
                + " \"x\" in [2, x]");

    Path offsets = dir.resolve("offsets.safetensors");
    writeRaw(
        offsets, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", new byte[8]);
    assertThatThrownBy(() -> Safetensors.open(offsets))
        .isInstanceOf(Safetensors.FormatException.class)
        .hasMessageContaining("tensor a has a non-integer data_offsets element 8.5");
  }

  @Test
  void bf16RoundsToNearestEven() {
    assertThat(Safetensors.bf16ToFloat(Safetensors.floatToBf16(1.0f))).isEqualTo(1.0f);
    // 1 + 2^-8 lies exactly between two bf16 values; ties go to the even mantissa (1.0).
    assertThat(Safetensors.bf16ToFloat(Safetensors.floatToBf16(1.00390625f))).isEqualTo(1.0f);
    assertThat(Safetensors.f16ToFloat((short) 0x3C00)).isEqualTo(1.0f);
    assertThat(Safetensors.f16ToFloat((short) 0xFC00)).isEqualTo(Float.NEGATIVE_INFINITY);
    assertThat(Safetensors.f16ToFloat((short) 0x0001)).isEqualTo(0x1p-24f);
  }

  private static void writeRaw(Path file, String header, byte[] data) throws Exception {
    byte[] json = header.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    ByteBuffer buffer =
        ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    buffer.putLong(json.length).put(json).put(data);
    Files.write(file, buffer.array());
  }

  private static float bf16Truncated(float value) {
    return Float.intBitsToFloat(Float.floatToRawIntBits(value) & 0xFFFF0000);
  }

  private static float[] ramp(int n) {
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = i * 0.5f - 1f;
    }
    return values;
  }
}
