package io.kubetune.api;

/**
 * A value of a FineTuneJob (or trainer config) field that cannot be used: which field, what is
 * wrong, and how to fix it. The operator turns it into {@code Validated=False}, the trainer into
 * exit code 2.
 */
public class InvalidFieldException extends IllegalArgumentException {
  private final String field;
  private final String problem;
  private final String fix;

  public InvalidFieldException(String field, String problem, String fix) {
    super(field + ": " + problem + "; fix: " + fix);
    this.field = field;
    this.problem = problem;
    this.fix = fix;
  }

  public String field() {
    return field;
  }

  public String problem() {
    return problem;
  }

  public String fix() {
    return fix;
  }
}
