package io.kubetune.operator.validation;

/**
 * One thing wrong with a FineTuneJob: the field, what is wrong, and how to fix it.
 *
 * @param field JSON path of the field, e.g. spec.method.lora.rank
 * @param problem what is wrong with its value
 * @param fix what the user should change
 */
public record ValidationProblem(String field, String problem, String fix) {
  @Override
  public String toString() {
    return field + ": " + problem + "; fix: " + fix;
  }
}
