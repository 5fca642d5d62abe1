package io.kubetune.local;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;

/**
 * The kubelet's HTTPS endpoint, as far as the API server uses it for {@code pods/log}: {@code GET
 * /containerLogs/{namespace}/{pod}/{container}} with {@code tailLines}, {@code limitBytes} and
 * {@code follow}. Only clients with a certificate signed by the cluster's CA get in (the API server
 * presents one). {@code previous} is refused (a restarted container's earlier log is not kept);
 * {@code timestamps} and {@code sinceSeconds} are ignored (lines carry no times).
 */
final class KubeletLogServer implements AutoCloseable {
  /** One container's log: its file, how to print a line, and whether it may still grow. */
  record ContainerLog(Path file, UnaryOperator<String> rewrite, BooleanSupplier running) {}

  private final HttpsServer server;
  private final Function<String, Optional<ContainerLog>> logs;

  /**
   * @param logs the log of {@code namespace/pod/container}, if this node has (had) it
   */
  KubeletLogServer(SSLContext tls, Function<String, Optional<ContainerLog>> logs)
      throws IOException {
    this.logs = logs;
    server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setHttpsConfigurator(
        new HttpsConfigurator(tls) {
          @Override
          public void configure(HttpsParameters params) {
            SSLParameters ssl = tls.getDefaultSSLParameters();
            ssl.setNeedClientAuth(true);
            params.setSSLParameters(ssl);
          }
        });
    server.setExecutor(Executors.newCachedThreadPool(daemon()));
    server.createContext("/containerLogs/", this::containerLog);
    server.createContext("/healthz", exchange -> reply(exchange, 200, "ok"));
    server.start();
  }

  int port() {
    return server.getAddress().getPort();
  }

  private void containerLog(HttpExchange exchange) throws IOException {
    try (exchange) {
      String[] parts =
          exchange.getRequestURI().getPath().substring("/containerLogs/".length()).split("/");
      if (parts.length != 3) {
        reply(exchange, 404, "expected /containerLogs/{namespace}/{pod}/{container}");
        return;
      }
      Map<String, String> query = query(exchange.getRequestURI().getRawQuery());
      if (Boolean.parseBoolean(query.get("previous"))) {
        reply(
            exchange,
            400,
            "previous terminated container \""
                + parts[2]
                + "\" in pod \""
                + parts[1]
                + "\" not found (the local kubelet keeps only the current log)");
        return;
      }
      Optional<ContainerLog> log = logs.apply(String.join("/", parts));
      if (log.isEmpty() || !Files.exists(log.get().file())) {
        reply(
            exchange,
            404,
            "container \"" + parts[2] + "\" in pod \"" + parts[1] + "\" has no log on this node");
        return;
      }
      Integer tail = intParam(query, "tailLines");
      Integer limit = intParam(query, "limitBytes");
      exchange.getResponseHeaders().set("Content-Type", "text/plain");
      exchange.sendResponseHeaders(200, 0);
      OutputStream out = exchange.getResponseBody();
      long[] written = {0};
      long position = writeTail(log.get(), tail, limit, out, written);
      if (Boolean.parseBoolean(query.get("follow"))) {
        follow(log.get(), position, limit, out, written);
      }
    }
  }

  /** Writes the last {@code tail} lines (all when null); returns the file position reached. */
  private static long writeTail(
      ContainerLog log, Integer tail, Integer limit, OutputStream out, long[] written)
      throws IOException {
    List<String> lines;
    long size;
    try (RandomAccessFile file = new RandomAccessFile(log.file().toFile(), "r")) {
      size = file.length();
      byte[] bytes = new byte[(int) size];
      file.readFully(bytes);
      String text = new String(bytes, StandardCharsets.UTF_8);
      int complete = text.lastIndexOf('\n') + 1; // a half-written last line waits for follow
      size = text.substring(0, complete).getBytes(StandardCharsets.UTF_8).length;
      lines = text.substring(0, complete).lines().toList();
    }
    int from = tail == null ? 0 : Math.max(0, lines.size() - tail);
    for (String line : lines.subList(from, lines.size())) {
      if (!write(out, log.rewrite().apply(line), limit, written)) {
        break;
      }
    }
    out.flush();
    return size;
  }

  /** Streams lines appended after {@code position} until the container stopped. */
  private static void follow(
      ContainerLog log, long position, Integer limit, OutputStream out, long[] written)
      throws IOException {
    StringBuilder partial = new StringBuilder();
    while (true) {
      boolean running = log.running().getAsBoolean();
      try (RandomAccessFile file = new RandomAccessFile(log.file().toFile(), "r")) {
        if (file.length() > position) {
          file.seek(position);
          byte[] bytes = new byte[(int) (file.length() - position)];
          file.readFully(bytes);
          position += bytes.length;
          partial.append(new String(bytes, StandardCharsets.UTF_8));
          int nl;
          while ((nl = partial.indexOf("\n")) >= 0) {
            if (!write(out, log.rewrite().apply(partial.substring(0, nl)), limit, written)) {
              return;
            }
            partial.delete(0, nl + 1);
          }
          out.flush();
          continue;
        }
      }
      if (!running) {
        return;
      }
      try {
        Thread.sleep(200); // a file has no change notification here
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private static boolean write(OutputStream out, String line, Integer limit, long[] written)
      throws IOException {
    byte[] bytes = (line + "\n").getBytes(StandardCharsets.UTF_8);
    if (limit != null && written[0] + bytes.length > limit) {
      out.write(bytes, 0, (int) Math.max(0, limit - written[0]));
      written[0] = limit;
      return false;
    }
    out.write(bytes);
    written[0] += bytes.length;
    return true;
  }

  private static Integer intParam(Map<String, String> query, String name) {
    String value = query.get(name);
    if (value == null) {
      return null;
    }
    try {
      return Integer.parseInt(value);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  private static Map<String, String> query(String raw) {
    Map<String, String> out = new HashMap<>();
    if (raw == null) {
      return out;
    }
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      String key = eq < 0 ? pair : pair.substring(0, eq);
      String value = eq < 0 ? "true" : pair.substring(eq + 1);
      out.put(
          URLDecoder.decode(key, StandardCharsets.UTF_8),
          URLDecoder.decode(value, StandardCharsets.UTF_8));
    }
    return out;
  }

  private static void reply(HttpExchange exchange, int code, String text) throws IOException {
    byte[] body = (text + "\n").getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "text/plain");
    exchange.sendResponseHeaders(code, body.length);
    exchange.getResponseBody().write(body);
    exchange.close();
  }

  private static java.util.concurrent.ThreadFactory daemon() {
    return r -> {
      Thread t = new Thread(r, "kubelet-logs");
      t.setDaemon(true);
      return t;
    };
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
