/**
 * Cooperative cancellation between kernel calls. Code that may be abandoned half-way (a training step's
 * forward and backward passes, a preview sampling) runs inside `cancellable(fn)`; while it runs, every
 * kernel dispatch checks a flag word, and a non-zero word throws CancelledError there, so a signal is
 * honoured within one kernel call instead of one whole step. Code outside (optimizer updates, checkpoint
 * writes) is never interrupted. The error is thrown once per region: the `finally` blocks that unwind it
 * may run kernels again.
 *
 * The word is set by whoever watches for the signal: a native handler (src/backends/native, see
 * src/train/interrupt.ts) or plain JavaScript (`requestCancel`).
 */
import { unwatchSignals, watchSignals } from '../backends/index.js';

/** The engine's signal word (the native addon's, where it loads) and its release: see src/train/interrupt.ts. */
export const signalWord = { watch: watchSignals, unwatch: unwatchSignals };

export class CancelledError extends Error {
  override name = 'CancelledError';
}

let flag: Int32Array | null = null;
let armed = 0;
let unwinding = false;

/** The word to watch (non-zero: cancel); null stops watching. */
export function setCancelFlag(word: Int32Array | null): void {
  flag = word;
  unwinding = false;
}

/** Sets the watched word (e.g. from a JavaScript signal handler). */
export function requestCancel(code = 1): void {
  if (flag) flag[0] = code;
}

/** Runs fn; while it runs, a set flag word throws CancelledError at the next kernel dispatch. */
export function cancellable<T>(fn: () => T): T {
  armed++;
  try {
    return fn();
  } finally {
    if (--armed === 0) unwinding = false;
  }
}

/** Called before each kernel: throws CancelledError inside a cancellable region once the word is set. */
export function checkCancelled(): void {
  if (armed !== 0 && flag !== null && !unwinding && flag[0] !== 0) {
    unwinding = true;
    throw new CancelledError(`cancelled (signal ${flag[0]})`);
  }
}
