package io.kubetune.local;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Draws train loss (per step) and eval loss (per evaluation, including the base model at step 0)
 * from the trainer's metrics.json as a self-contained SVG: no plotting library, opens in any
 * browser.
 */
final class LossCurve {
  static final int WIDTH = 720;
  static final int HEIGHT = 400;
  static final int LEFT = 60;
  static final int RIGHT = 20;
  static final int TOP = 40;
  static final int BOTTOM = 50;

  private LossCurve() {}

  record Point(double step, double loss) {}

  static String svg(JsonNode metrics, String title) {
    List<Point> train = new ArrayList<>();
    for (JsonNode p : metrics.path("trainLoss")) {
      train.add(new Point(p.path("step").asDouble(), p.path("loss").asDouble()));
    }
    List<Point> eval = new ArrayList<>();
    if (metrics.path("initial").has("eval_loss")) {
      eval.add(new Point(0, metrics.path("initial").path("eval_loss").asDouble()));
    }
    for (JsonNode e : metrics.path("history")) {
      if (e.has("eval_loss")) {
        eval.add(new Point(e.path("step").asDouble(), e.path("eval_loss").asDouble()));
      }
    }
    double maxStep = 1;
    double minLoss = Double.MAX_VALUE;
    double maxLoss = -Double.MAX_VALUE;
    for (Point p : concat(train, eval)) {
      if (!Double.isFinite(p.loss())) {
        continue;
      }
      maxStep = Math.max(maxStep, p.step());
      minLoss = Math.min(minLoss, p.loss());
      maxLoss = Math.max(maxLoss, p.loss());
    }
    if (minLoss > maxLoss) {
      minLoss = 0;
      maxLoss = 1;
    }
    double pad = Math.max(1e-6, (maxLoss - minLoss) * 0.05);
    Scale scale = new Scale(maxStep, Math.max(0, minLoss - pad), maxLoss + pad);

    StringBuilder svg = new StringBuilder();
    svg.append(
        String.format(
            Locale.ROOT,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d"
                + " %d\" font-family=\"sans-serif\" font-size=\"12\">%n",
            WIDTH,
            HEIGHT,
            WIDTH,
            HEIGHT));
    svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    svg.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%d\" y=\"24\" font-size=\"15\">%s</text>%n",
            LEFT,
            escape(title)));
    // Axes and ticks.
    int x0 = LEFT;
    int y0 = HEIGHT - BOTTOM;
    svg.append(
        String.format(
            Locale.ROOT,
            "<path d=\"M%d %d V%d H%d\" stroke=\"black\" fill=\"none\"/>%n",
            x0,
            TOP,
            y0,
            WIDTH - RIGHT));
    for (int i = 0; i <= 4; i++) {
      double loss = scale.minLoss + (scale.maxLoss - scale.minLoss) * i / 4;
      double y = scale.y(loss);
      svg.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                  + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>%n",
              x0,
              y,
              WIDTH - RIGHT,
              y,
              x0 - 6,
              y + 4,
              loss));
      double step = maxStep * i / 4;
      svg.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>%n",
              scale.x(step),
              y0 + 18,
              step));
    }
    svg.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>%n",
            (LEFT + WIDTH - RIGHT) / 2,
            HEIGHT - 12));
    svg.append(polyline(train, scale, "#1f77b4", 1.5));
    svg.append(polyline(eval, scale, "#d62728", 2.5));
    for (Point p : eval) {
      svg.append(
          String.format(
              Locale.ROOT,
              "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#d62728\"/>%n",
              scale.x(p.step()),
              scale.y(p.loss())));
    }
    // Legend.
    svg.append(
        String.format(
            Locale.ROOT,
            "<g transform=\"translate(%d,%d)\"><line x1=\"0\" y1=\"0\" x2=\"24\" y2=\"0\""
                + " stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"30\" y=\"4\">train loss</text>"
                + "<line x1=\"110\" y1=\"0\" x2=\"134\" y2=\"0\" stroke=\"#d62728\""
                + " stroke-width=\"2.5\"/><text x=\"140\" y=\"4\">eval loss (step 0 = base"
                + " model)</text></g>%n",
            WIDTH - RIGHT - 360,
            TOP - 14));
    svg.append("</svg>\n");
    return svg.toString();
  }

  private record Scale(double maxStep, double minLoss, double maxLoss) {
    double x(double step) {
      return LEFT + (WIDTH - LEFT - RIGHT) * step / maxStep;
    }

    double y(double loss) {
      return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (loss - minLoss) / (maxLoss - minLoss);
    }
  }

  private static String polyline(List<Point> points, Scale scale, String color, double width) {
    StringBuilder d = new StringBuilder();
    for (Point p : points) {
      if (!Double.isFinite(p.loss())) {
        continue;
      }
      d.append(String.format(Locale.ROOT, "%.1f,%.1f ", scale.x(p.step()), scale.y(p.loss())));
    }
    if (d.length() == 0) {
      return "";
    }
    return String.format(
        Locale.ROOT,
        "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"/>%n",
        d.toString().trim(),
        color,
        width);
  }

  private static List<Point> concat(List<Point> a, List<Point> b) {
    List<Point> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  private static String escape(String text) {
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
