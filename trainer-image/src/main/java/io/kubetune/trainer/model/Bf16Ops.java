package io.kubetune.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * bf16 tensors through DJL 0.36's PyTorch engine, which cannot name the type itself.
 *
 * <p>DJL passes a dtype to libtorch as {@code DataType.ordinal()}; its native mapping ({@code
 * GetScalarTypeFromDType} in {@code djl_pytorch_utils.h}) knows ordinals 0-8 only and answers any
 * other, {@code BFLOAT16} (11) included, with a bare {@code throw;} outside a handler, which is
 * {@code std::terminate}: the JVM aborts. Tensors that are already bf16 work with every DJL op that
 * takes no dtype (matMul, linear, add, transpose, ...), so the only missing piece is the cast. This
 * class gets it from a tiny TorchScript module whose source is written here and compiled by
 * libtorch when the module is loaded: no Python, no file, at build time or at run time.
 *
 * <p>The casts run with autograd recording (DJL's own {@code toType} runs under {@code
 * NoGradGuard}, so it cuts the graph): gradients flow through them to fp32 tensors on either side.
 * DJL reports a bf16 array's {@code getDataType()} as {@code UNKNOWN}; never pass one to a DJL call
 * that forwards its dtype (zeros/onesLike, softmax, toFloatArray), which aborts or throws.
 */
public final class Bf16Ops implements AutoCloseable {
  /**
   * The module's TorchScript, as {@code torch.jit.save} writes it. ScalarType 15: bf16, 6: fp32.
   */
  static final String SOURCE =
      """
      class Bf16Ops(Module):
        __parameters__ = []
        __buffers__ = []
        training : bool
        def forward(self: __torch__.Bf16Ops,
          x: Tensor) -> Tensor:
          return torch.to(x, 15)
        def to_float32(self: __torch__.Bf16Ops,
          x: Tensor) -> Tensor:
          return torch.to(x, 6)
        def linear(self: __torch__.Bf16Ops,
          x: Tensor,
          weight: Tensor) -> Tensor:
          return torch.to(torch.linear(torch.to(x, 15), weight), 6)
      """;

  /** IValueUtils picks the method from an input array named like this; it is not passed on. */
  private static final String METHOD_PREFIX = "module_method:";

  private final PtSymbolBlock module;
  private final NDArray toFloat32Method;
  private final NDArray linearMethod;

  private Bf16Ops(PtSymbolBlock module, NDManager manager) {
    this.module = module;
    this.toFloat32Method = marker(manager, "to_float32");
    this.linearMethod = marker(manager, "linear");
  }

  /** Compiles the module on the manager's device; close it (or the manager) when done. */
  public static Bf16Ops load(NDManager manager) {
    try {
      PtSymbolBlock module =
          JniUtils.loadModule(
              (PtNDManager) manager, new ByteArrayInputStream(archive()), true, false);
      return new Bf16Ops(module, manager);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** x cast to bf16 (round to nearest even), differentiable. */
  public NDArray toBf16(NDArray x) {
    return run(null, x);
  }

  /** x cast to fp32 (exact from bf16), differentiable. */
  public NDArray toFloat32(NDArray x) {
    return run(toFloat32Method, x);
  }

  /**
   * fp32 {@code x (..., in)} times bf16 {@code weight (out, in)} transposed, as fp32 {@code (...,
   * out)}: x is rounded to bf16, the product accumulates in fp32 inside the GEMM and is rounded to
   * bf16, as under torch.autocast. One native call; differentiable with respect to x.
   */
  public NDArray linear(NDArray x, NDArray weight) {
    return run(linearMethod, x, weight);
  }

  private NDArray run(NDArray method, NDArray... inputs) {
    NDList list = new NDList(inputs.length + 1);
    for (NDArray input : inputs) {
      // IValueUtils reads a dotted or bracketed name as a dict/list/tuple input.
      if (input.getName() != null) {
        throw new IllegalArgumentException(
            "Bf16Ops inputs must be unnamed arrays, got '" + input.getName() + "'");
      }
      list.add(input);
    }
    if (method != null) {
      list.add(method);
    }
    // The profiling executor's bookkeeping costs ~80 us a call for a one-op graph; the flag is
    // per thread in libtorch, so set it on the calling thread.
    JniUtils.setGraphExecutorOptimize(false);
    // isTrain=true: run with the caller's grad mode (false would be InferenceMode).
    return IValueUtils.forward(module, list, true).singletonOrThrow();
  }

  private static NDArray marker(NDManager manager, String method) {
    NDArray marker = manager.create(0f);
    marker.setName(METHOD_PREFIX + method);
    return marker;
  }

  @Override
  public void close() {
    toFloat32Method.close();
    linearMethod.close();
    module.close();
  }

  /**
   * The TorchScript archive {@code torch.jit.load} reads: the pickled module object (an instance of
   * {@code __torch__.Bf16Ops} with {@code training=False}), its source, no constants, format 3.
   */
  static byte[] archive() throws IOException {
    ByteArrayOutputStream pickle = new ByteArrayOutputStream();
    pickle.write(new byte[] {(byte) 0x80, 2}); // PROTO 2
    pickle.write("c__torch__\nBf16Ops\n".getBytes(StandardCharsets.US_ASCII)); // GLOBAL
    pickle.write(new byte[] {'q', 0, ')', (byte) 0x81, '}', '('}); // BINPUT, (), NEWOBJ, {}, MARK
    pickle.write(new byte[] {'X', 8, 0, 0, 0}); // BINUNICODE of 8 bytes
    pickle.write("training".getBytes(StandardCharsets.US_ASCII));
    pickle.write(new byte[] {'q', 1, (byte) 0x89, 'u', 'b', 'q', 2, '.'}); // False SETITEMS BUILD

    ByteArrayOutputStream zip = new ByteArrayOutputStream();
    try (ZipOutputStream out = new ZipOutputStream(zip)) {
      stored(out, "bf16ops/data.pkl", pickle.toByteArray());
      stored(out, "bf16ops/code/__torch__.py", SOURCE.getBytes(StandardCharsets.UTF_8));
      stored(out, "bf16ops/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
      stored(out, "bf16ops/version", "3\n".getBytes(StandardCharsets.US_ASCII));
      stored(out, "bf16ops/byteorder", "little".getBytes(StandardCharsets.US_ASCII));
    }
    return zip.toByteArray();
  }

  private static void stored(ZipOutputStream out, String name, byte[] data) throws IOException {
    ZipEntry entry = new ZipEntry(name);
    entry.setMethod(ZipEntry.STORED);
    entry.setSize(data.length);
    CRC32 crc = new CRC32();
    crc.update(data);
    entry.setCrc(crc.getValue());
    out.putNextEntry(entry);
    out.write(data);
    out.closeEntry();
  }
}
