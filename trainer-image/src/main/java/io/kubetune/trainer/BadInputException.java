package io.kubetune.trainer;

/**
 * The input (config, model files, dataset) is wrong and retrying cannot help. The message is one
 * line naming the problem and the fix; the CLI exits with {@code TrainerExitCodes.BAD_INPUT}.
 */
public class BadInputException extends RuntimeException {
  public BadInputException(String message) {
    super(message);
  }

  public BadInputException(String message, Throwable cause) {
    super(message, cause);
  }
}
