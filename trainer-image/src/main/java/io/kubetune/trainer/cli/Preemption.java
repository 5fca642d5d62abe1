package io.kubetune.trainer.cli;

import io.kubetune.api.trainer.TrainerExitCodes;
import io.kubetune.trainer.train.FineTuner;
import java.io.PrintStream;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import sun.misc.Signal;

/**
 * SIGTERM handling for {@code train}: the training loop finishes its current step, commits a
 * checkpoint and the command exits with {@link TrainerExitCodes#PREEMPTED}. A watchdog halts the
 * JVM with the same code once the budget is spent, so a slow step or upload cannot outlive the
 * pod's grace period; a checkpoint cut short has no manifest and the previous one stays in force.
 *
 * <p>A signal handler (not a shutdown hook) because a shutdown hook runs while the JVM is already
 * shutting down, concurrently with other hooks that may release the native engine under the
 * still-running training step.
 */
final class Preemption {
  private final Duration budget;
  private final PrintStream err;
  private final AtomicReference<FineTuner> tuner = new AtomicReference<>();
  private volatile boolean signalled;

  private Preemption(Duration budget, PrintStream err) {
    this.budget = budget;
    this.err = err;
  }

  static Preemption install(Duration budget, PrintStream err) {
    Preemption preemption = new Preemption(budget, err);
    try {
      Signal.handle(new Signal("TERM"), s -> preemption.onSignal());
    } catch (IllegalArgumentException e) {
      // -Xrs or a platform without SIGTERM: the default (immediate exit) remains.
      err.println("SIGTERM handling not available: " + e.getMessage());
    }
    return preemption;
  }

  /** The run to stop; a signal that came before it existed stops it before its first step. */
  void attach(FineTuner run) {
    tuner.set(run);
    if (signalled) {
      run.requestStop();
    }
  }

  boolean signalled() {
    return signalled;
  }

  void onSignal() {
    if (signalled) {
      return;
    }
    signalled = true;
    err.println(
        "SIGTERM: finishing the current step and writing a checkpoint (budget "
            + budget.toSeconds()
            + " s)");
    FineTuner run = tuner.get();
    if (run != null) {
      run.requestStop();
    }
    Thread watchdog =
        new Thread(
            () -> {
              try {
                Thread.sleep(budget.toMillis());
              } catch (InterruptedException e) {
                return;
              }
              err.println(
                  "error: preemption budget of "
                      + budget.toSeconds()
                      + " s exceeded; exiting without a new checkpoint (the previous one stays"
                      + " in force)");
              err.flush();
              Runtime.getRuntime().halt(TrainerExitCodes.PREEMPTED);
            },
            "preemption-watchdog");
    watchdog.setDaemon(true);
    watchdog.start();
  }
}
