package io.kubetune.trainer.safetensors;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.MappedByteBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format:
 * an 8-byte little-endian header length N, N bytes of JSON header (padded with spaces so the data
 * starts 8-byte aligned), then the tensors' bytes. Offsets in the header are relative to the start
 * of the data and must tile it contiguously.
 *
 * <p>{@link Reader#readFloats(String, long, int, ByteBuffer, ByteBuffer)} reads any part of a
 * tensor of any size by positional I/O; {@link Reader#rawBytes} and {@link
 * Reader#readFloats(String)} map or copy a whole tensor and are for tensors under 2 GB. F16 and
 * BF16 tensors are converted to fp32 in Java because DJL's PyTorch engine aborts the JVM on bf16
 * arrays.
 */
public final class Safetensors {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String METADATA_KEY = "__metadata__";

  /** Header limit used by the reference implementation; protects against corrupt lengths. */
  private static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

  private Safetensors() {}

  /** Element types this class understands. */
  public enum DType {
    F32(4),
    F16(2),
    BF16(2),
    I64(8),
    I32(4);

    public final int bytes;

    DType(int bytes) {
      this.bytes = bytes;
    }
  }

  /** A tensor's entry in the header. */
  public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
    public long elementCount() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }
  }

  /** An fp32 tensor to write. {@code data.length} must equal the product of {@code shape}. */
  public record FloatTensor(long[] shape, float[] data) {
    public FloatTensor {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      if (n != data.length) {
        throw new IllegalArgumentException(
            "shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
      }
    }
  }

  /** Thrown when a file is not valid safetensors; the message names the file and the problem. */
  public static final class FormatException extends IOException {
    public FormatException(Path file, String problem) {
      super(file + " is not a valid safetensors file: " + problem);
    }
  }

  /** Opens a file for reading; the header is parsed and validated immediately. */
  public static Reader open(Path file) throws IOException {
    return new Reader(file);
  }

  /** A safetensors file opened for reading. Tensors are mapped on demand. */
  public static final class Reader implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private Reader(Path file) throws IOException {
      this.file = file;
      this.channel = FileChannel.open(file, StandardOpenOption.READ);
      try {
        long size = channel.size();
        if (size < 8) {
          throw new FormatException(file, "shorter than the 8-byte header length");
        }
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(lengthBytes, 0);
        long headerLength = lengthBytes.flip().getLong();
        if (headerLength <= 0 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
          throw new FormatException(file, "header length " + headerLength + " is out of range");
        }
        ByteBuffer header = ByteBuffer.allocate((int) headerLength);
        readFully(header, 8);
        this.dataStart = 8 + headerLength;
        Map<String, Object> parsed;
        try {
          parsed =
              JSON.readValue(
                  new String(header.array(), StandardCharsets.UTF_8), new TypeReference<>() {});
        } catch (IOException e) {
          throw new FormatException(file, "header is not JSON (" + e.getMessage() + ")");
        }
        Map<String, String> meta = new LinkedHashMap<>();
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : parsed.entrySet()) {
          if (METADATA_KEY.equals(e.getKey())) {
            if (e.getValue() instanceof Map<?, ?> m) {
              m.forEach((k, v) -> meta.put(String.valueOf(k), String.valueOf(v)));
            }
            continue;
          }
          infos.put(e.getKey(), parseInfo(e.getKey(), e.getValue()));
        }
        validateOffsets(infos, size - dataStart);
        this.tensors = Collections.unmodifiableMap(infos);
        this.metadata = Collections.unmodifiableMap(meta);
      } catch (IOException | RuntimeException e) {
        channel.close();
        throw e;
      }
    }

    private void readFully(ByteBuffer target, long position) throws IOException {
      while (target.hasRemaining()) {
        int n = channel.read(target, position + target.position());
        if (n < 0) {
          throw new FormatException(file, "unexpected end of file");
        }
      }
    }

    private TensorInfo parseInfo(String name, Object raw) throws FormatException {
      if (!(raw instanceof Map<?, ?> entry)) {
        throw new FormatException(file, "entry " + name + " is not an object");
      }
      DType dtype;
      try {
        dtype = DType.valueOf(String.valueOf(entry.get("dtype")));
      } catch (IllegalArgumentException e) {
        throw new FormatException(
            file, "tensor " + name + " has unsupported dtype " + entry.get("dtype"));
      }
      if (!(entry.get("shape") instanceof List<?> shapeList)
          || !(entry.get("data_offsets") instanceof List<?> offsets)
          || offsets.size() != 2) {
        throw new FormatException(file, "tensor " + name + " lacks shape or data_offsets");
      }
      long[] shape = new long[shapeList.size()];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = headerInteger(name, "shape", shapeList, i);
        if (shape[i] < 0) {
          throw new FormatException(file, "tensor " + name + " has a negative dimension");
        }
      }
      long begin = headerInteger(name, "data_offsets", offsets, 0);
      long end = headerInteger(name, "data_offsets", offsets, 1);
      TensorInfo info = new TensorInfo(name, dtype, shape, begin, end);
      if (end - begin != info.elementCount() * dtype.bytes) {
        throw new FormatException(
            file,
            "tensor "
                + name
                + " spans "
                + (end - begin)
                + " bytes but its shape and dtype need "
                + info.elementCount() * dtype.bytes);
      }
      return info;
    }

    /**
     * An element of a header list ({@code shape}, {@code data_offsets}) as a long; anything but an
     * integer (a string, a fraction, null, a number beyond a long) is a format error naming the
     * tensor and the list.
     */
    private long headerInteger(String name, String list, List<?> values, int index)
        throws FormatException {
      Object v = values.get(index);
      if (v instanceof Integer || v instanceof Long) {
        return ((Number) v).longValue();
      }
      throw new FormatException(
          file,
          "tensor "
              + name
              + " has a non-integer "
              + list
              + " element "
              + (v instanceof String ? "\"" + v + "\"" : String.valueOf(v))
              + " in "
              + values);
    }

    /** The reference implementation requires the tensors to tile the data area exactly. */
    private void validateOffsets(Map<String, TensorInfo> infos, long dataLength)
        throws FormatException {
      List<TensorInfo> sorted = new ArrayList<>(infos.values());
      sorted.sort((a, b) -> Long.compare(a.begin(), b.begin()));
      long expected = 0;
      for (TensorInfo t : sorted) {
        if (t.begin() != expected) {
          throw new FormatException(
              file, "tensor " + t.name() + " starts at " + t.begin() + ", expected " + expected);
        }
        expected = t.end();
      }
      if (expected != dataLength) {
        throw new FormatException(
            file, "tensors cover " + expected + " bytes but the data area has " + dataLength);
      }
    }

    public Path file() {
      return file;
    }

    /** Tensor entries in header order. */
    public Map<String, TensorInfo> tensors() {
      return tensors;
    }

    public Map<String, String> metadata() {
      return metadata;
    }

    public TensorInfo info(String name) {
      TensorInfo info = tensors.get(name);
      if (info == null) {
        throw new IllegalArgumentException(file + " has no tensor named " + name);
      }
      return info;
    }

    /** The tensor's raw little-endian bytes, memory-mapped (read-only). */
    public ByteBuffer rawBytes(String name) throws IOException {
      TensorInfo info = info(name);
      long length = info.end() - info.begin();
      if (length > Integer.MAX_VALUE) {
        throw new FormatException(file, "tensor " + name + " is larger than 2 GB");
      }
      MappedByteBuffer mapped =
          channel.map(FileChannel.MapMode.READ_ONLY, dataStart + info.begin(), length);
      return mapped.order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The tensor as fp32 values (F16 and BF16 are widened exactly). */
    public float[] readFloats(String name) throws IOException {
      TensorInfo info = info(name);
      ByteBuffer bytes = rawBytes(name);
      int n = Math.toIntExact(info.elementCount());
      float[] out = new float[n];
      switch (info.dtype()) {
        case F32 -> bytes.asFloatBuffer().get(out);
        case F16 -> {
          for (int i = 0; i < n; i++) {
            out[i] = f16ToFloat(bytes.getShort(2 * i));
          }
        }
        case BF16 -> {
          for (int i = 0; i < n; i++) {
            out[i] = bf16ToFloat(bytes.getShort(2 * i));
          }
        }
        default ->
            throw new FormatException(
                file, "tensor " + name + " has dtype " + info.dtype() + ", expected a float type");
      }
      return out;
    }

    /**
     * Reads {@code count} elements of a float tensor starting at element {@code first}, widened to
     * fp32, into {@code out} (from index 0, in the buffer's byte order). {@code raw} receives the
     * file bytes of F16/BF16 tensors and needs {@code 2 * count} bytes; an F32 tensor is read
     * straight into {@code out}. Reading by positional I/O into caller-owned buffers, rather than
     * mapping, keeps the file's pages out of the process's resident memory once read, so loading a
     * tensor of any size needs only these two buffers.
     */
    public void readFloats(String name, long first, int count, ByteBuffer raw, ByteBuffer out)
        throws IOException {
      TensorInfo info = info(name);
      if (first < 0 || first + count > info.elementCount()) {
        throw new IllegalArgumentException(
            "elements " + first + ".." + (first + count) + " outside " + name);
      }
      long position = dataStart + info.begin() + first * info.dtype().bytes;
      out.clear().limit(4 * count);
      switch (info.dtype()) {
        case F32 -> {
          ByteOrder order = out.order();
          readFully(out, position);
          if (order != ByteOrder.LITTLE_ENDIAN) {
            for (int i = 0; i < count; i++) {
              out.putInt(4 * i, Integer.reverseBytes(out.getInt(4 * i)));
            }
          }
        }
        case F16, BF16 -> {
          raw.clear().limit(2 * count);
          readFully(raw, position);
          raw.flip();
          ShortBuffer halves = raw.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
          FloatBuffer floats = out.asFloatBuffer();
          if (info.dtype() == DType.BF16) {
            IntBuffer bits = out.asIntBuffer();
            for (int i = 0; i < count; i++) {
              bits.put(i, (halves.get(i) & 0xFFFF) << 16);
            }
          } else {
            for (int i = 0; i < count; i++) {
              floats.put(i, f16ToFloat(halves.get(i)));
            }
          }
        }
        default ->
            throw new FormatException(
                file, "tensor " + name + " has dtype " + info.dtype() + ", expected a float type");
      }
      out.position(0).limit(4 * count);
    }

    @Override
    public void close() throws IOException {
      channel.close();
    }
  }

  /** IEEE 754 half precision to fp32 (Java 17 has no Float.float16ToFloat). */
  public static float f16ToFloat(short half) {
    int bits = half & 0xFFFF;
    int sign = (bits & 0x8000) << 16;
    int exponent = (bits >>> 10) & 0x1F;
    int mantissa = bits & 0x3FF;
    if (exponent == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
    }
    if (exponent == 0) {
      // Zero or subnormal: value = mantissa * 2^-24.
      float magnitude = mantissa * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  }

  /** bf16 is the upper half of an fp32 bit pattern. */
  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** Rounds to nearest even, as PyTorch does when casting fp32 to bf16. */
  public static short floatToBf16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounding = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /** Writes fp32 tensors, with {@code {"format": "pt"}} metadata as transformers expects. */
  public static void writeFloats(Path file, Map<String, FloatTensor> tensors) throws IOException {
    writeFloats(file, tensors, Map.of("format", "pt"));
  }

  /**
   * Writes fp32 tensors in the given order. The file is written next to its destination and moved
   * into place, so a crash never leaves a truncated file under the final name.
   */
  public static void writeFloats(
      Path file, Map<String, FloatTensor> tensors, Map<String, String> metadata)
      throws IOException {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    tensors.forEach((name, t) -> shapes.put(name, t.shape()));
    writeFloats(file, shapes, name -> tensors.get(name).data(), metadata);
  }

  /**
   * Writes fp32 tensors one at a time: the header is computed from the shapes alone, then each
   * tensor's values are produced, written and dropped, so a writer holds one tensor in memory (the
   * GGUF converter dequantizes tensor by tensor). The file appears under its name only when
   * complete.
   *
   * @param shapes tensor names and shapes, in file order
   * @param values produces a tensor's values (row-major, as many as its shape holds)
   */
  public static void writeFloats(
      Path file,
      Map<String, long[]> shapes,
      java.util.function.Function<String, float[]> values,
      Map<String, String> metadata)
      throws IOException {
    Map<String, Object> header = new LinkedHashMap<>();
    if (!metadata.isEmpty()) {
      header.put(METADATA_KEY, metadata);
    }
    long offset = 0;
    for (Map.Entry<String, long[]> e : shapes.entrySet()) {
      long length = 4L * elements(e.getValue());
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
    readableByAll(temp);
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

  /**
   * Temp files are created owner-only (0600); exported files are meant to be read by other users (a
   * serving pod with another uid on a shared volume), so they become 0644 where POSIX applies.
   */
  public static void readableByAll(Path file) throws IOException {
    try {
      Files.setPosixFilePermissions(
          file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
    } catch (UnsupportedOperationException notPosix) {
      // not a POSIX file system: nothing to widen
    }
  }
}
