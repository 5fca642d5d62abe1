package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Run as its own JVM by {@link Bf16ProbeTest}: one DJL call that names bf16 (or forwards a bf16
 * array's UNKNOWN dtype) to libtorch. Prints "survived" if the call returns.
 */
public final class Bf16AbortProbe {
  private Bf16AbortProbe() {}

  public static void main(String[] args) {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray floats = manager.create(new float[] {1.5f, -2.25f, 3f, 0.1f});
      System.out.println("engine ready");
      System.out.flush();
      NDArray result =
          switch (args[0]) {
            case "toType" -> floats.toType(DataType.BFLOAT16, false);
            case "create" -> {
              ByteBuffer bits = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
              for (float f : new float[] {1.5f, -2.25f, 3f, 0.1f}) {
                bits.putShort((short) (Float.floatToRawIntBits(f) >>> 16));
              }
              bits.rewind();
              yield manager.create(bits, new Shape(4), DataType.BFLOAT16);
            }
            case "zeros" -> manager.zeros(new Shape(4), DataType.BFLOAT16);
            case "zerosLike" -> {
              try (Bf16Ops ops = Bf16Ops.load(manager)) {
                yield ops.toBf16(floats).zerosLike();
              }
            }
            default -> throw new IllegalArgumentException(args[0]);
          };
      System.out.println("survived " + result.getShape());
    }
  }
}
