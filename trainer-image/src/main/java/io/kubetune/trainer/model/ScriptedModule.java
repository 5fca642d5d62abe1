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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * libtorch ops that DJL 0.36 does not expose, reached through a TorchScript module whose source is
 * written in Java and compiled by libtorch when the module is loaded: no Python and no file, at
 * build time or at run time.
 *
 * <p>Methods run with the caller's grad mode, so autograd records them like any DJL op and
 * gradients flow through them. Their arguments are tensors only (DJL passes nothing else with grad
 * mode kept); anything else a method needs is written into its source.
 */
public final class ScriptedModule implements AutoCloseable {
  /** IValueUtils picks the method from an input array named like this; it is not passed on. */
  private static final String METHOD_PREFIX = "module_method:";

  private final PtSymbolBlock module;
  private final NDManager manager;
  private final Map<String, NDArray> methodMarkers = new ConcurrentHashMap<>();

  private ScriptedModule(PtSymbolBlock module, NDManager manager) {
    this.module = module;
    this.manager = manager;
  }

  /**
   * Compiles a TorchScript module class {@code className} on the manager's device. {@code methods}
   * are its methods as {@code torch.jit.save} writes them (typed, {@code self:
   * __torch__.<className>}, indented by two spaces), {@code forward} among them; the class header
   * is added here. Close the module (or the manager) when done.
   */
  public static ScriptedModule compile(NDManager manager, String className, String methods) {
    String source =
        "class "
            + className
            + "(Module):\n"
            + "  __parameters__ = []\n"
            + "  __buffers__ = []\n"
            + "  training : bool\n"
            + methods;
    try {
      PtSymbolBlock module =
          JniUtils.loadModule(
              (PtNDManager) manager,
              new ByteArrayInputStream(archive(className, source)),
              true,
              false);
      return new ScriptedModule(module, manager);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Runs {@code method} ({@code forward} when null) on unnamed tensors; one tensor comes back. */
  public NDArray call(String method, NDArray... inputs) {
    return callForAll(method, inputs).singletonOrThrow();
  }

  /** As {@link #call} for a method that returns a tuple of tensors. */
  public NDList callForAll(String method, NDArray... inputs) {
    NDList list = new NDList(inputs.length + 1);
    addUnnamed(list, inputs);
    return run(method, list);
  }

  /**
   * Runs {@code method} with each of {@code lists} as one {@code List[Tensor]} argument, in order,
   * then {@code tensors}; one tensor comes back. DJL builds a list argument from the input arrays
   * that share a name, so each array is named for the call and gets its own name back after it: an
   * array must not appear twice, and no list may be empty (DJL could not pass it).
   */
  public NDArray callWithLists(String method, List<List<NDArray>> lists, NDArray... tensors) {
    NDList inputs = new NDList();
    List<String> names = new ArrayList<>();
    try {
      for (int i = 0; i < lists.size(); i++) {
        if (lists.get(i).isEmpty()) {
          throw new IllegalArgumentException(
              "list argument " + i + " of " + method + " is empty: DJL cannot pass an empty list");
        }
        for (NDArray array : lists.get(i)) {
          names.add(array.getName());
          array.setName("list" + i + "[]");
          inputs.add(array);
        }
      }
      addUnnamed(inputs, tensors);
      return run(method, inputs).singletonOrThrow();
    } finally {
      for (int i = 0; i < names.size(); i++) {
        inputs.get(i).setName(names.get(i));
      }
    }
  }

  private static void addUnnamed(NDList list, NDArray[] inputs) {
    for (NDArray input : inputs) {
      // IValueUtils reads a dotted or bracketed name as a dict/list/tuple input.
      if (input.getName() != null) {
        throw new IllegalArgumentException(
            "scripted module inputs must be unnamed arrays, got '" + input.getName() + "'");
      }
      list.add(input);
    }
  }

  private NDList run(String method, NDList inputs) {
    if (method != null) {
      inputs.add(methodMarkers.computeIfAbsent(method, this::marker));
    }
    // The profiling executor's bookkeeping costs ~80 us a call for a one-op graph; the flag is
    // per thread in libtorch, so set it on the calling thread.
    JniUtils.setGraphExecutorOptimize(false);
    // isTrain=true: run with the caller's grad mode (false would be InferenceMode).
    return IValueUtils.forward(module, inputs, true);
  }

  private NDArray marker(String method) {
    NDArray marker = manager.create(0f);
    marker.setName(METHOD_PREFIX + method);
    return marker;
  }

  @Override
  public void close() {
    methodMarkers.values().forEach(NDArray::close);
    module.close();
  }

  /**
   * The TorchScript archive {@code torch.jit.load} reads: the pickled module object (an instance of
   * {@code __torch__.<className>} with {@code training=False}), its source, no constants, format 3.
   */
  static byte[] archive(String className, String source) throws IOException {
    ByteArrayOutputStream pickle = new ByteArrayOutputStream();
    pickle.write(new byte[] {(byte) 0x80, 2}); // PROTO 2
    pickle.write(("c__torch__\n" + className + "\n").getBytes(StandardCharsets.US_ASCII)); // GLOBAL
    pickle.write(new byte[] {'q', 0, ')', (byte) 0x81, '}', '('}); // BINPUT, (), NEWOBJ, {}, MARK
    pickle.write(new byte[] {'X', 8, 0, 0, 0}); // BINUNICODE of 8 bytes
    pickle.write("training".getBytes(StandardCharsets.US_ASCII));
    pickle.write(new byte[] {'q', 1, (byte) 0x89, 'u', 'b', 'q', 2, '.'}); // False SETITEMS BUILD

    String folder = className.toLowerCase(java.util.Locale.ROOT);
    ByteArrayOutputStream zip = new ByteArrayOutputStream();
    try (ZipOutputStream out = new ZipOutputStream(zip)) {
      stored(out, folder + "/data.pkl", pickle.toByteArray());
      stored(out, folder + "/code/__torch__.py", source.getBytes(StandardCharsets.UTF_8));
      stored(out, folder + "/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
      stored(out, folder + "/version", "3\n".getBytes(StandardCharsets.US_ASCII));
      stored(out, folder + "/byteorder", "little".getBytes(StandardCharsets.US_ASCII));
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
