// Ctrl-C and SIGTERM for boxsmith itself. Supervised children live in their
// own sessions, so the terminal's Ctrl-C reaches only boxsmith; it decides:
//   first SIGINT/SIGTERM/SIGHUP: abort the run; the current stage's child is
//     SIGTERMed (grace, SIGKILL) and the cleanups of the steps that ran are
//     called in reverse order; the CLI then exits 130 / 143 / 129;
//   a second one: SIGKILL every supervised process of the run at once and
//     exit immediately (the watchdog, left without goodbye, tears down VMs).
// A repeat within DUPLICATE_WINDOW_MS of the first is the same keypress
// delivered twice: `npm run` forwards the terminal's SIGINT to boxsmith,
// which also gets it from the terminal directly. A person pressing Ctrl-C
// again takes longer than that.

import { InterruptedError } from './errors.ts';
import { forceKillAllSupervised } from './supervise.ts';

/** 128 + signal number, the shell convention: SIGINT 130, SIGTERM 143, SIGHUP 129. */
export function exitCodeForSignal(signal: NodeJS.Signals): number {
  switch (signal) {
    case 'SIGHUP':
      return 129;
    case 'SIGINT':
      return 130;
    case 'SIGTERM':
      return 143;
    default:
      return 1;
  }
}

export interface InterruptHandlerOptions {
  /** Where to tell the user what is happening. Default: stderr. */
  log?: (message: string) => void;
  /** Called on the second signal after everything was SIGKILLed, before exiting (sync; e.g. restore the terminal). */
  onForce?: (signal: NodeJS.Signals) => void;
  /** Replaces process.exit for the forced exit (tests). */
  exit?: (code: number) => void;
}

export interface InterruptHandle {
  /** The first signal received, or null. */
  readonly signal: NodeJS.Signals | null;
  /** Exit code the CLI should use once the graceful stop finished (130/143/129), or null when not interrupted. */
  readonly exitCode: number | null;
  /** Removes the handlers (restoring Node's default of dying on the signal). */
  dispose(): void;
}

const HANDLED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const DUPLICATE_WINDOW_MS = 500;

export function installInterruptHandlers(controller: AbortController, options: InterruptHandlerOptions = {}): InterruptHandle {
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  let first: NodeJS.Signals | null = null;
  let firstAt = 0;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (first === null) {
      first = signal;
      firstAt = Date.now();
      log(
        signal === 'SIGINT'
          ? 'boxsmith: interrupted; stopping the current stage and running cleanups (press Ctrl-C again to kill everything now)'
          : `boxsmith: received ${signal}; stopping the current stage and running cleanups (send it again to kill everything now)`,
      );
      controller.abort(new InterruptedError(signal));
      return;
    }
    if (Date.now() - firstAt < DUPLICATE_WINDOW_MS) return;
    const stages = forceKillAllSupervised();
    log(`boxsmith: received ${signal} again; killed ${stages} running stage(s) and all processes of the run, exiting without cleanup`);
    try {
      options.onForce?.(signal);
    } finally {
      (options.exit ?? process.exit)(exitCodeForSignal(first));
    }
  };

  for (const signal of HANDLED_SIGNALS) process.on(signal, onSignal);
  return {
    get signal() {
      return first;
    },
    get exitCode() {
      return first === null ? null : exitCodeForSignal(first);
    },
    dispose() {
      for (const signal of HANDLED_SIGNALS) process.off(signal, onSignal);
    },
  };
}
