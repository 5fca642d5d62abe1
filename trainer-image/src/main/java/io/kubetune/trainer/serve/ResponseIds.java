package io.kubetune.trainer.serve;

import java.util.Optional;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The ids of completion, chat completion and classify responses: {@code <kind>-<adapter>-<uuid>},
 * where {@code <adapter>} is the first {@value #DIGEST_CHARS} hex digits of the SHA-256 of the
 * adapter that answered ({@value #BASE} for the base model). Feedback on an answer ({@code POST
 * /v1/feedback}) can then be credited by any serving pod that serves that adapter, not only by the
 * pod that answered: with {@code replicas > 1} the Service sends the feedback call to any pod. The
 * id stays an opaque string to clients, as OpenAI's ids are.
 */
public final class ResponseIds {
  /** Hex digits of the adapter digest an id carries: 64 bits, unique among served adapters. */
  public static final int DIGEST_CHARS = 16;

  /** What an id carries for an answer of the base model (it has no adapter digest). */
  public static final String BASE = "base";

  private static final Pattern ID =
      Pattern.compile(
          "(?:chatcmpl|cmpl|clf)-([0-9a-f]{"
              + DIGEST_CHARS
              + "}|"
              + BASE
              + ")-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");

  private ResponseIds() {}

  /** A new id for a response of {@code kind} (chatcmpl, cmpl, clf) answered by {@code stats}. */
  public static String issue(String kind, Variants.Stats stats) {
    return kind + "-" + adapterKey(stats.digest()) + "-" + UUID.randomUUID();
  }

  /** The key an id carries for an adapter digest: its first hex digits, or {@value #BASE}. */
  public static String adapterKey(String digest) {
    if (digest == null) {
      return BASE;
    }
    String hex = digest.toLowerCase(java.util.Locale.ROOT);
    if (!hex.matches("[0-9a-f]{" + DIGEST_CHARS + ",}")) {
      throw new IllegalArgumentException("not a SHA-256 hex digest: " + digest);
    }
    return hex.substring(0, DIGEST_CHARS);
  }

  /** The adapter key of an id this server issued; empty for any other string. */
  public static Optional<String> adapterKeyOf(String id) {
    Matcher m = ID.matcher(id);
    return m.matches() ? Optional.of(m.group(1)) : Optional.empty();
  }
}
