package io.kubetune.trainer.gguf;

import io.kubetune.trainer.BadInputException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (llama.cpp's model format, versions 2 and 3), opened for reading: the metadata
 * key/value pairs, the tensor infos, and each tensor's bytes on demand. Layout, from the GGUF
 * specification: magic {@code GGUF}, uint32 version, uint64 tensor count, uint64 metadata count,
 * the metadata, the tensor infos (name, dimensions fastest-varying first, type, offset), padding to
 * the alignment ({@code general.alignment}, 32 when absent), then the tensor data. Everything is
 * little-endian. A file that breaks the layout is refused with a {@link BadInputException} naming
 * the file and the problem.
 */
public final class GgufFile implements AutoCloseable {

  /** The metadata value types of the specification, by id. */
  enum ValueType {
    UINT8,
    INT8,
    UINT16,
    INT16,
    UINT32,
    INT32,
    FLOAT32,
    BOOL,
    STRING,
    ARRAY,
    UINT64,
    INT64,
    FLOAT64
  }

  /**
   * A tensor's entry: its GGUF name, dimensions in GGUF order (fastest-varying first, the reverse
   * of PyTorch's shape), type, and offset from the start of the data section.
   */
  public record TensorInfo(String name, long[] dimensions, GgmlType type, long offset) {
    public long elementCount() {
      long n = 1;
      for (long d : dimensions) {
        n *= d;
      }
      return n;
    }

    /** The shape as PyTorch and safetensors write it (slowest-varying first). */
    public long[] torchShape() {
      long[] shape = new long[dimensions.length];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = dimensions[dimensions.length - 1 - i];
      }
      return shape;
    }

    public long byteCount() {
      return type.bytesFor(elementCount());
    }
  }

  private static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
  private static final int DEFAULT_ALIGNMENT = 32;
  private static final int MAX_DIMENSIONS = 4; // GGML_MAX_DIMS

  private final Path file;
  private final FileChannel channel;
  private final int version;
  private final Map<String, Object> metadata;
  private final Map<String, ValueType> metadataTypes;
  private final Map<String, TensorInfo> tensors;
  private final long dataStart;

  private GgufFile(
      Path file,
      FileChannel channel,
      int version,
      Map<String, Object> metadata,
      Map<String, ValueType> metadataTypes,
      Map<String, TensorInfo> tensors,
      long dataStart) {
    this.file = file;
    this.channel = channel;
    this.version = version;
    this.metadata = metadata;
    this.metadataTypes = metadataTypes;
    this.tensors = tensors;
    this.dataStart = dataStart;
  }

  /** Opens and validates a GGUF file: header, metadata, tensor infos and data bounds. */
  public static GgufFile open(Path file) {
    FileChannel channel;
    try {
      channel = FileChannel.open(file, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new BadInputException("cannot read GGUF file " + file + ": " + e.getMessage(), e);
    }
    try {
      return parse(file, channel);
    } catch (RuntimeException e) {
      closeQuietly(channel);
      throw e;
    } catch (IOException e) {
      closeQuietly(channel);
      throw new BadInputException("cannot read GGUF file " + file + ": " + e.getMessage(), e);
    }
  }

  private static GgufFile parse(Path file, FileChannel channel) throws IOException {
    HeaderReader in = new HeaderReader(file, channel);
    int magic = in.int32("the magic number");
    if (magic != MAGIC) {
      throw in.bad(
          String.format(
              "bad magic 0x%08X (expected the bytes 'GGUF'): not a GGUF file",
              magic & 0xFFFFFFFFL));
    }
    int version = in.int32("the version");
    if (version != 2 && version != 3) {
      throw in.bad(
          "unsupported GGUF version "
              + Integer.toUnsignedString(version)
              + " (supported: 2, 3; a big-endian file also shows up here)");
    }
    long tensorCount = in.count("the tensor count");
    long metadataCount = in.count("the metadata count");

    Map<String, Object> metadata = new LinkedHashMap<>();
    Map<String, ValueType> types = new LinkedHashMap<>();
    for (long i = 0; i < metadataCount; i++) {
      String key = in.string("metadata key " + i);
      ValueType type = in.valueType("metadata '" + key + "'");
      if (metadata.containsKey(key)) {
        throw in.bad("metadata key '" + key + "' appears twice");
      }
      metadata.put(key, in.value(type, "metadata '" + key + "'"));
      types.put(key, type);
    }

    int alignment = DEFAULT_ALIGNMENT;
    if (metadata.containsKey("general.alignment")) {
      Object value = metadata.get("general.alignment");
      if (types.get("general.alignment") != ValueType.UINT32
          || (long) value <= 0
          || Long.bitCount((long) value) != 1) {
        throw in.bad("general.alignment must be a power of two (uint32), got " + value);
      }
      alignment = Math.toIntExact((long) value);
    }

    Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    for (long i = 0; i < tensorCount; i++) {
      String name = in.string("tensor info " + i);
      long dimensionCount = in.uint32("the dimension count of tensor " + name);
      if (dimensionCount < 1 || dimensionCount > MAX_DIMENSIONS) {
        throw in.bad("tensor " + name + " has " + dimensionCount + " dimensions (1 to 4 allowed)");
      }
      long[] dimensions = new long[(int) dimensionCount];
      for (int d = 0; d < dimensions.length; d++) {
        dimensions[d] = in.count("a dimension of tensor " + name);
      }
      long typeId = in.uint32("the type of tensor " + name);
      GgmlType type = GgmlType.byId(typeId);
      if (type == null) {
        throw in.bad("tensor " + name + " has unknown ggml type id " + typeId);
      }
      long offset = in.count("the offset of tensor " + name);
      if (dimensions[0] % type.blockSize != 0) {
        throw in.bad(
            "tensor "
                + name
                + " has "
                + dimensions[0]
                + " values per row, not a multiple of the "
                + type
                + " block size "
                + type.blockSize);
      }
      if (offset % alignment != 0) {
        throw in.bad(
            "tensor " + name + " starts at offset " + offset + ", not aligned to " + alignment);
      }
      if (tensors.containsKey(name)) {
        throw in.bad("tensor " + name + " appears twice");
      }
      tensors.put(name, new TensorInfo(name, dimensions, type, offset));
    }
    long dataStart = (in.position() + alignment - 1) / alignment * alignment;
    long dataBytes = channel.size() - dataStart;
    for (TensorInfo t : tensors.values()) {
      long end = t.offset() + t.byteCount();
      if (end > dataBytes || end < 0) {
        throw in.bad(
            "truncated: tensor "
                + t.name()
                + " ends at byte "
                + (dataStart + end)
                + " but the file has "
                + channel.size());
      }
    }
    return new GgufFile(
        file,
        channel,
        version,
        Collections.unmodifiableMap(metadata),
        Collections.unmodifiableMap(types),
        Collections.unmodifiableMap(tensors),
        dataStart);
  }

  public Path file() {
    return file;
  }

  public int version() {
    return version;
  }

  /** Metadata values: Long for integers, Float/Double, Boolean, String, or a List of those. */
  public Map<String, Object> metadata() {
    return metadata;
  }

  /** Tensor infos in file order, by GGUF name. */
  public Map<String, TensorInfo> tensors() {
    return tensors;
  }

  public boolean has(String key) {
    return metadata.containsKey(key);
  }

  /** A required string value. */
  public String string(String key) {
    return typed(key, String.class, "a string");
  }

  /** A required integer value of any integer type. */
  public long integer(String key) {
    Object value = required(key);
    ValueType type = metadataTypes.get(key);
    if (!(value instanceof Long l) || type == ValueType.BOOL) {
      throw bad("metadata '" + key + "' must be an integer, got " + type);
    }
    return l;
  }

  /** A required int value that fits a Java int. */
  public int positiveInt(String key) {
    long value = integer(key);
    if (value <= 0 || value > Integer.MAX_VALUE) {
      throw bad("metadata '" + key + "' must be a positive int, got " + value);
    }
    return (int) value;
  }

  /**
   * A required floating-point value. A FLOAT32 is returned as the shortest decimal that rounds to
   * it (1e-5, not 9.999999747378752e-06), which is the number the model's author wrote.
   */
  public double decimal(String key) {
    Object value = required(key);
    if (value instanceof Float f) {
      return Double.parseDouble(Float.toString(f));
    }
    if (value instanceof Double d) {
      return d;
    }
    throw bad("metadata '" + key + "' must be a float, got " + metadataTypes.get(key));
  }

  public boolean bool(String key) {
    return typed(key, Boolean.class, "a bool");
  }

  /** A required array of strings. */
  public List<String> strings(String key) {
    List<?> list = typed(key, List.class, "an array");
    List<String> out = new ArrayList<>(list.size());
    for (Object item : list) {
      if (!(item instanceof String s)) {
        throw bad("metadata '" + key + "' must be an array of strings");
      }
      out.add(s);
    }
    return out;
  }

  /** A required array of integers. */
  public long[] integers(String key) {
    List<?> list = typed(key, List.class, "an array");
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(list.get(i) instanceof Long l)) {
        throw bad("metadata '" + key + "' must be an array of integers");
      }
      out[i] = l;
    }
    return out;
  }

  private Object required(String key) {
    Object value = metadata.get(key);
    if (value == null) {
      throw bad("metadata '" + key + "' is missing");
    }
    return value;
  }

  private <T> T typed(String key, Class<T> type, String what) {
    Object value = required(key);
    if (!type.isInstance(value)) {
      throw bad("metadata '" + key + "' must be " + what + ", got " + metadataTypes.get(key));
    }
    return type.cast(value);
  }

  /** A problem with this file, as bad input that names it. */
  public BadInputException bad(String problem) {
    return new BadInputException(file + " is not a usable GGUF file: " + problem);
  }

  /** The tensor's bytes, memory-mapped read-only (a tensor must be under 2 GB). */
  public ByteBuffer bytes(TensorInfo tensor) {
    long length = tensor.byteCount();
    if (length > Integer.MAX_VALUE) {
      throw bad("tensor " + tensor.name() + " is larger than 2 GB");
    }
    try {
      return channel
          .map(FileChannel.MapMode.READ_ONLY, dataStart + tensor.offset(), length)
          .order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new BadInputException(
          "cannot read tensor " + tensor.name() + " of " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * The tensor as fp32 values in row-major order of {@link TensorInfo#torchShape()}. A type without
   * a dequantization is refused with the tensor and type named.
   */
  public float[] dequantize(TensorInfo tensor) {
    if (!tensor.type().dequantizable) {
      throw bad(
          "tensor "
              + tensor.name()
              + " is "
              + tensor.type()
              + ", which KubeTune cannot dequantize (supported: "
              + Arrays.stream(GgmlType.values()).filter(t -> t.dequantizable).toList()
              + ")");
    }
    long elements = tensor.elementCount();
    if (elements > Integer.MAX_VALUE - 8) {
      throw bad("tensor " + tensor.name() + " has more than 2^31 values");
    }
    return tensor.type().dequantize(bytes(tensor), (int) elements);
  }

  @Override
  public void close() {
    closeQuietly(channel);
  }

  private static void closeQuietly(FileChannel channel) {
    try {
      channel.close();
    } catch (IOException ignored) {
      // read-only: nothing was left unwritten
    }
  }

  /**
   * Sequential little-endian reads of the header through a buffer, with the file position tracked
   * so that a short file is reported as truncated and no count read from a corrupt file can make it
   * allocate more than the file holds.
   */
  private static final class HeaderReader {
    private final Path file;
    private final FileChannel channel;
    private final long size;
    private final ByteBuffer buffer = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    private long bufferStart;

    HeaderReader(Path file, FileChannel channel) throws IOException {
      this.file = file;
      this.channel = channel;
      this.size = channel.size();
      buffer.limit(0);
    }

    BadInputException bad(String problem) {
      return new BadInputException(file + " is not a usable GGUF file: " + problem);
    }

    long position() {
      return bufferStart + buffer.position();
    }

    private void need(int bytes, String what) throws IOException {
      if (buffer.remaining() >= bytes) {
        return;
      }
      if (position() + bytes > size) {
        throw bad(
            "truncated: "
                + what
                + " needs "
                + bytes
                + " bytes at offset "
                + position()
                + " but the file has "
                + size);
      }
      bufferStart = position();
      buffer.compact();
      while (buffer.position() < bytes) {
        if (channel.read(buffer, bufferStart + buffer.position()) < 0) {
          throw bad("truncated: unexpected end of file in " + what);
        }
      }
      buffer.flip();
    }

    int int32(String what) throws IOException {
      need(4, what);
      return buffer.getInt();
    }

    long uint32(String what) throws IOException {
      return Integer.toUnsignedLong(int32(what));
    }

    /** A uint64 count or offset, which must fit in a signed long and in the file. */
    long count(String what) throws IOException {
      need(8, what);
      long value = buffer.getLong();
      if (value < 0) {
        throw bad(what + " is out of range (" + Long.toUnsignedString(value) + ")");
      }
      return value;
    }

    ValueType valueType(String what) throws IOException {
      long id = uint32("the type of " + what);
      if (id >= ValueType.values().length) {
        throw bad(what + " has unknown value type " + id);
      }
      return ValueType.values()[(int) id];
    }

    String string(String what) throws IOException {
      long length = count("the length of " + what);
      if (length > size - position()) {
        throw bad(
            "truncated: " + what + " is " + length + " bytes long but the file ends before that");
      }
      byte[] bytes = new byte[(int) length];
      int done = 0;
      while (done < bytes.length) {
        need(1, what);
        int n = Math.min(buffer.remaining(), bytes.length - done);
        buffer.get(bytes, done, n);
        done += n;
      }
      try {
        return StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(bytes))
            .toString();
      } catch (CharacterCodingException e) {
        throw bad(what + " is not valid UTF-8");
      }
    }

    Object value(ValueType type, String what) throws IOException {
      return switch (type) {
        case UINT8 -> {
          need(1, what);
          yield (long) (buffer.get() & 0xFF);
        }
        case INT8 -> {
          need(1, what);
          yield (long) buffer.get();
        }
        case UINT16 -> {
          need(2, what);
          yield (long) (buffer.getShort() & 0xFFFF);
        }
        case INT16 -> {
          need(2, what);
          yield (long) buffer.getShort();
        }
        case UINT32 -> uint32(what);
        case INT32 -> (long) int32(what);
        case FLOAT32 -> {
          need(4, what);
          yield buffer.getFloat();
        }
        case BOOL -> {
          need(1, what);
          byte b = buffer.get();
          if (b != 0 && b != 1) {
            throw bad(what + " is a bool with value " + b);
          }
          yield b == 1;
        }
        case STRING -> string(what);
        case ARRAY -> {
          ValueType itemType = valueType("the items of " + what);
          if (itemType == ValueType.ARRAY) {
            throw bad(what + " is an array of arrays, which KubeTune does not read");
          }
          long length = count("the length of " + what);
          // Every item takes at least one byte: a larger count is a corrupt or truncated file.
          if (length > size - position()) {
            throw bad("truncated: " + what + " has " + length + " items but the file ends first");
          }
          List<Object> items = new ArrayList<>((int) length);
          for (long i = 0; i < length; i++) {
            items.add(value(itemType, what));
          }
          yield Collections.unmodifiableList(items);
        }
        case UINT64 -> {
          need(8, what);
          long v = buffer.getLong();
          if (v < 0) {
            throw bad(what + " is out of range (" + Long.toUnsignedString(v) + ")");
          }
          yield v;
        }
        case INT64 -> {
          need(8, what);
          yield buffer.getLong();
        }
        case FLOAT64 -> {
          need(8, what);
          yield buffer.getDouble();
        }
      };
    }
  }
}
