package io.kubetune.trainer;

import java.util.Locale;

/**
 * A volume the trainer writes to has no space left (ENOSPC, or a disk quota): retrying cannot help
 * until space is freed. The message names what was being written, where, and the fix; the CLI exits
 * with {@code TrainerExitCodes.STORAGE_FULL} (reason {@code StorageFull}).
 */
public class StorageFullException extends RuntimeException {
  public StorageFullException(String message, Throwable cause) {
    super(message, cause);
  }

  /**
   * True when {@code e} or one of its causes is the operating system's "no space left on device"
   * (ENOSPC) or "disk quota exceeded" (EDQUOT): Java reports both only as an IOException message.
   */
  public static boolean noSpaceIn(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      String message = t.getMessage();
      if (message != null) {
        String m = message.toLowerCase(Locale.ROOT);
        if (m.contains("no space left on device") || m.contains("disk quota exceeded")) {
          return true;
        }
      }
    }
    return false;
  }
}
