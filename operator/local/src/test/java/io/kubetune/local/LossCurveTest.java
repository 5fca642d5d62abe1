package io.kubetune.local;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;

class LossCurveTest {
  @Test
  void drawsTrainAndEvalLossAsValidSvg() throws Exception {
    JsonNode metrics =
        new ObjectMapper()
            .readTree(
                """
                {"initial": {"eval_loss": 1.6},
                 "history": [{"step": 50, "eval_loss": 1.1}, {"step": 100, "eval_loss": 0.7}],
                 "trainLoss": [{"step": 1, "loss": 1.61}, {"step": 50, "loss": 1.2},
                               {"step": 100, "loss": 0.65}, {"step": 101, "loss": "NaN"}]}
                """);
    String svg = LossCurve.svg(metrics, "demo <run>");
    Document doc =
        DocumentBuilderFactory.newInstance()
            .newDocumentBuilder()
            .parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
    assertThat(doc.getDocumentElement().getNodeName()).isEqualTo("svg");
    assertThat(doc.getElementsByTagName("polyline").getLength()).isEqualTo(2);
    assertThat(doc.getElementsByTagName("circle").getLength()).isEqualTo(3);
    assertThat(svg).contains("demo &lt;run&gt;").doesNotContain("NaN");
  }
}
