package io.kubetune.trainer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Seeded synthetic datasets where learning is measurable on a tiny model. */
public final class Fixtures {
  private Fixtures() {}

  public static final List<String> TICKET_LABELS = List.of("billing", "login", "shipping", "bug");

  private static final List<List<String>> KEYWORDS =
      List.of(
          List.of("invoice", "refund", "charged", "payment", "price"),
          List.of("password", "locked", "sign in", "two-factor", "username"),
          List.of("parcel", "delivery", "courier", "tracking", "arrived"),
          List.of("crash", "error", "broken", "freezes", "exception"));

  private static final List<String> FILLER =
      List.of("hello", "please", "help", "my", "the", "today", "again", "thanks", "urgent", "why");

  /** Support tickets: each label has its own keywords mixed into shared filler words. */
  public static Path tickets(Path file, int count, long seed) throws IOException {
    Random random = new Random(seed);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int label = random.nextInt(TICKET_LABELS.size());
      StringBuilder text = new StringBuilder();
      for (int w = 0; w < 6; w++) {
        String word =
            w % 3 == 1
                ? KEYWORDS.get(label).get(random.nextInt(5))
                : FILLER.get(random.nextInt(FILLER.size()));
        text.append(w == 0 ? "" : " ").append(word);
      }
      lines.add("{\"text\": \"" + text + "\", \"label\": \"" + TICKET_LABELS.get(label) + "\"}");
    }
    Files.write(file, lines);
    return file;
  }

  /** Completions with a fixed house style: the answer restates the city in capitals. */
  public static Path completions(Path file, int count, long seed) throws IOException {
    List<String> cities = List.of("paris", "tokyo", "lima", "oslo", "cairo", "delhi");
    Random random = new Random(seed);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      String city = cities.get(random.nextInt(cities.size()));
      lines.add(
          "{\"prompt\": \"Where is the meeting? "
              + city
              + "\", \"completion\": \" In "
              + city.toUpperCase()
              + ", as planned.\"}");
    }
    Files.write(file, lines);
    return file;
  }
}
