package io.kubetune.trainer.gguf;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes small GGUF v3 files for tests (independently of the reader): metadata of the types the
 * tests need and F32 tensors, or any raw tensor bytes with any type id.
 */
final class GgufBytes {
  private record Tensor(String name, long[] dimensions, int typeId, byte[] data) {}

  private final Map<String, Object> metadata = new LinkedHashMap<>();
  private final List<Tensor> tensors = new ArrayList<>();
  int version = 3;
  int magic = 0x46554747;

  GgufBytes put(String key, Object value) {
    metadata.put(key, value);
    return this;
  }

  /** An F32 tensor; dimensions fastest-varying first, as GGUF stores them. */
  GgufBytes f32(String name, float[] values, long... dimensions) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return raw(name, 0, b.array(), dimensions);
  }

  GgufBytes raw(String name, int typeId, byte[] data, long... dimensions) {
    tensors.add(new Tensor(name, dimensions, typeId, data));
    return this;
  }

  byte[] bytes() {
    Out out = new Out();
    out.i32(magic);
    out.i32(version);
    out.i64(tensors.size());
    out.i64(metadata.size());
    metadata.forEach(
        (key, value) -> {
          out.str(key);
          out.value(value, true);
        });
    long offset = 0;
    List<Long> offsets = new ArrayList<>();
    for (Tensor t : tensors) {
      out.str(t.name());
      out.i32(t.dimensions().length);
      for (long d : t.dimensions()) {
        out.i64(d);
      }
      out.i32(t.typeId());
      out.i64(offset);
      offsets.add(offset);
      offset += (t.data().length + 31) / 32 * 32;
    }
    out.pad();
    for (Tensor t : tensors) {
      out.bytes.writeBytes(t.data());
      out.pad();
    }
    return out.bytes.toByteArray();
  }

  Path write(Path file) throws Exception {
    Files.write(file, bytes());
    return file;
  }

  private static final class Out {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    void i32(int v) {
      bytes.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
    }

    void i64(long v) {
      bytes.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    void str(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      i64(b.length);
      bytes.writeBytes(b);
    }

    void pad() {
      while (bytes.size() % 32 != 0) {
        bytes.write(0);
      }
    }

    /** Integer -> UINT32 (4), Float -> FLOAT32 (6), Boolean (7), String (8), List -> ARRAY (9). */
    void value(Object v, boolean withType) {
      if (v instanceof Integer i) {
        if (withType) i32(4);
        i32(i);
      } else if (v instanceof Float f) {
        if (withType) i32(6);
        i32(Float.floatToIntBits(f));
      } else if (v instanceof Boolean b) {
        if (withType) i32(7);
        bytes.write(b ? 1 : 0);
      } else if (v instanceof String s) {
        if (withType) i32(8);
        str(s);
      } else if (v instanceof List<?> list) {
        if (withType) i32(9);
        Object first = list.get(0);
        i32(first instanceof String ? 8 : first instanceof Float ? 6 : 5);
        i64(list.size());
        for (Object item : list) {
          if (item instanceof Integer i) {
            i32(i); // INT32 items
          } else {
            value(item, false);
          }
        }
      } else {
        throw new IllegalArgumentException("no GGUF type for " + v);
      }
    }
  }
}
