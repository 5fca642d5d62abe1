package io.kubetune.trainer.gguf;

import io.kubetune.trainer.safetensors.Safetensors;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The tensor types of ggml, with their ids and block layout as GGUF files store them (the {@code
 * ggml_type} enum; block sizes as in the {@code gguf} Python package's {@code GGML_QUANT_SIZES}).
 * Every type is known so that a file's layout can be checked; only some can be dequantized.
 */
public enum GgmlType {
  F32(0, 1, 4, true),
  F16(1, 1, 2, true),
  Q4_0(2, 32, 18, true),
  Q4_1(3, 32, 20, true),
  Q5_0(6, 32, 22, false),
  Q5_1(7, 32, 24, false),
  Q8_0(8, 32, 34, true),
  Q8_1(9, 32, 40, false),
  Q2_K(10, 256, 84, false),
  Q3_K(11, 256, 110, false),
  Q4_K(12, 256, 144, false),
  Q5_K(13, 256, 176, false),
  Q6_K(14, 256, 210, false),
  Q8_K(15, 256, 292, false),
  IQ2_XXS(16, 256, 66, false),
  IQ2_XS(17, 256, 74, false),
  IQ3_XXS(18, 256, 98, false),
  IQ1_S(19, 256, 50, false),
  IQ4_NL(20, 32, 18, false),
  IQ3_S(21, 256, 110, false),
  IQ2_S(22, 256, 82, false),
  IQ4_XS(23, 256, 136, false),
  I8(24, 1, 1, false),
  I16(25, 1, 2, false),
  I32(26, 1, 4, false),
  I64(27, 1, 8, false),
  F64(28, 1, 8, false),
  IQ1_M(29, 256, 56, false),
  BF16(30, 1, 2, true),
  TQ1_0(34, 256, 54, false),
  TQ2_0(35, 256, 66, false),
  MXFP4(39, 32, 17, false),
  NVFP4(40, 64, 36, false),
  Q1_0(41, 128, 18, false);

  /** The id stored in a tensor info. */
  public final int id;

  /** Elements per block. */
  public final int blockSize;

  /** Bytes per block. */
  public final int blockBytes;

  /** Whether {@link #dequantize} implements this type. */
  public final boolean dequantizable;

  GgmlType(int id, int blockSize, int blockBytes, boolean dequantizable) {
    this.id = id;
    this.blockSize = blockSize;
    this.blockBytes = blockBytes;
    this.dequantizable = dequantizable;
  }

  /** The type with this id, or null when ggml has none. */
  public static GgmlType byId(long id) {
    for (GgmlType type : values()) {
      if (type.id == id) {
        return type;
      }
    }
    return null;
  }

  /** Bytes that {@code elements} values of this type occupy (a whole number of blocks). */
  public long bytesFor(long elements) {
    return elements / blockSize * blockBytes;
  }

  /**
   * Dequantizes {@code elements} values to fp32 exactly as the {@code gguf} Python package's {@code
   * gguf.quants.dequantize} does (same fp32 operations in the same order, so bit-identical).
   *
   * @param data the tensor's bytes, little-endian, from position 0
   */
  public float[] dequantize(ByteBuffer data, int elements) {
    ByteBuffer in = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[elements];
    switch (this) {
      case F32 -> in.asFloatBuffer().get(out);
      case F16 -> {
        for (int i = 0; i < elements; i++) {
          out[i] = Safetensors.f16ToFloat(in.getShort(2 * i));
        }
      }
      case BF16 -> {
        for (int i = 0; i < elements; i++) {
          out[i] = Safetensors.bf16ToFloat(in.getShort(2 * i));
        }
      }
      case Q8_0 -> {
        // Block: fp16 scale d, then 32 signed bytes q; value = q * d.
        for (int b = 0; b < elements / 32; b++) {
          int base = b * 34;
          float d = Safetensors.f16ToFloat(in.getShort(base));
          for (int j = 0; j < 32; j++) {
            out[b * 32 + j] = (float) in.get(base + 2 + j) * d;
          }
        }
      }
      case Q4_0 -> {
        // Block: fp16 scale d, then 16 bytes; the low nibbles are values 0-15, the high nibbles
        // values 16-31; value = (nibble - 8) * d.
        for (int b = 0; b < elements / 32; b++) {
          int base = b * 18;
          float d = Safetensors.f16ToFloat(in.getShort(base));
          for (int j = 0; j < 16; j++) {
            int packed = in.get(base + 2 + j) & 0xFF;
            out[b * 32 + j] = d * (float) ((packed & 0x0F) - 8);
            out[b * 32 + j + 16] = d * (float) ((packed >>> 4) - 8);
          }
        }
      }
      case Q4_1 -> {
        // Block: fp16 scale d, fp16 minimum m, then 16 bytes of nibbles as in Q4_0;
        // value = d * nibble + m (two fp32 roundings, no fused multiply-add, like numpy).
        for (int b = 0; b < elements / 32; b++) {
          int base = b * 20;
          float d = Safetensors.f16ToFloat(in.getShort(base));
          float m = Safetensors.f16ToFloat(in.getShort(base + 2));
          for (int j = 0; j < 16; j++) {
            int packed = in.get(base + 4 + j) & 0xFF;
            out[b * 32 + j] = d * (float) (packed & 0x0F) + m;
            out[b * 32 + j + 16] = d * (float) (packed >>> 4) + m;
          }
        }
      }
      default -> throw new IllegalStateException(this + " has no dequantization");
    }
    return out;
  }
}
