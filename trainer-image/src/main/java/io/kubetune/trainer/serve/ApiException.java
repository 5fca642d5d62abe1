package io.kubetune.trainer.serve;

/**
 * A request the server refuses, with the HTTP status and an OpenAI-style error body ({@code
 * {"error": {"message", "type", "param", "code"}}}) that names the field and the fix.
 */
public final class ApiException extends RuntimeException {
  private final int status;
  private final String type;
  private final String param;
  private final String code;

  ApiException(int status, String type, String param, String code, String message) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  public static ApiException badRequest(String param, String message) {
    return new ApiException(400, "invalid_request_error", param, null, message);
  }

  public static ApiException unknownModel(String model, java.util.Collection<String> known) {
    return new ApiException(
        404,
        "invalid_request_error",
        "model",
        "model_not_found",
        "model '" + model + "' is not served here; use one of " + known + " (GET /v1/models)");
  }

  public static ApiException overloaded(int capacity) {
    return new ApiException(
        429,
        "server_overloaded",
        null,
        "queue_full",
        "the server is busy: "
            + capacity
            + " requests are already running or queued; retry after a short wait");
  }

  public static ApiException notReady() {
    return new ApiException(
        503, "server_not_ready", null, "loading", "models are still loading; retry shortly");
  }

  public int status() {
    return status;
  }

  public String type() {
    return type;
  }

  public String param() {
    return param;
  }

  public String code() {
    return code;
  }
}
