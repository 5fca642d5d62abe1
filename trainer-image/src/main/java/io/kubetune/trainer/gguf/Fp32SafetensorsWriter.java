package io.kubetune.trainer.gguf;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kubetune.trainer.safetensors.Safetensors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * Writes an fp32 safetensors file one tensor at a time: the header is computed from the shapes
 * alone, then each tensor is produced, written and dropped, so a conversion holds one tensor in
 * memory instead of the whole model ({@link Safetensors#writeFloats} takes them all at once). The
 * file appears under its name only when complete.
 */
final class Fp32SafetensorsWriter {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Fp32SafetensorsWriter() {}

  /**
   * @param shapes tensor names and shapes, in file order
   * @param values produces a tensor's values (row-major, as many as its shape holds)
   */
  static void write(Path file, Map<String, long[]> shapes, Function<String, float[]> values)
      throws IOException {
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("__metadata__", Map.of("format", "pt"));
    long offset = 0;
    for (Map.Entry<String, long[]> e : shapes.entrySet()) {
      long length = 4 * elements(e.getValue());
      Map<String, Object> entry = new LinkedHashMap<>();
      entry.put("dtype", "F32");
      entry.put("shape", e.getValue());
      entry.put("data_offsets", new long[] {offset, offset + length});
      header.put(e.getKey(), entry);
      offset += length;
    }
    byte[] json = JSON.writeValueAsBytes(header);
    int padded = (json.length + 7) / 8 * 8;
    byte[] headerBytes = Arrays.copyOf(json, padded);
    Arrays.fill(headerBytes, json.length, padded, (byte) ' ');

    Path parent = file.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path temp = Files.createTempFile(parent, "." + file.getFileName(), ".tmp");
    try (FileChannel out = FileChannel.open(temp, StandardOpenOption.WRITE)) {
      ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
      prefix.putLong(padded).put(headerBytes).flip();
      writeFully(out, prefix);
      ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      for (Map.Entry<String, long[]> e : shapes.entrySet()) {
        float[] data = values.apply(e.getKey());
        if (data.length != elements(e.getValue())) {
          throw new IllegalStateException(
              e.getKey() + " produced " + data.length + " values for its shape");
        }
        int i = 0;
        while (i < data.length) {
          chunk.clear();
          int n = Math.min(chunk.capacity() / 4, data.length - i);
          chunk.asFloatBuffer().put(data, i, n);
          chunk.limit(4 * n);
          writeFully(out, chunk);
          i += n;
        }
      }
      out.force(true);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(temp);
      throw e;
    }
    Safetensors.readableByAll(temp);
    Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      out.write(buffer);
    }
  }
}
