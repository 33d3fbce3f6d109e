/**
 * SIGINT / SIGTERM for long jobs: the first signal asks the job to stop at the next kernel call (see
 * src/tensor/cancel.ts) and save; a second one quits at once. The exit code follows the shell's convention,
 * 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
 *
 * With the native addon the signal is seen the moment it arrives, even inside a long synchronous step;
 * without it (no compiler at install), JavaScript's own handler sees it when the step ends.
 */
import { setCancelFlag, signalWord } from '../tensor/cancel.js';

const CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
const NUMBERS: Record<number, 'SIGINT' | 'SIGTERM'> = { 2: 'SIGINT', 15: 'SIGTERM' };

export interface InterruptWatch {
  /** The first signal received, if any. */
  readonly signal: 'SIGINT' | 'SIGTERM' | null;
  /** 130 or 143 after a signal, else 0. */
  readonly exitCode: number;
  /** Stops watching: restores the handlers and the cancellation flag. */
  dispose(): void;
}

export interface InterruptOptions {
  /** Called once, at the first signal, from the event loop. */
  onFirst?: (signal: 'SIGINT' | 'SIGTERM') => void;
  /** Called at a second signal; by default the process exits at once with 130 / 143. */
  onSecond?: (signal: 'SIGINT' | 'SIGTERM') => void;
}

/** Watches SIGINT and SIGTERM for the lifetime of a job. */
export function watchInterrupts(opts: InterruptOptions = {}): InterruptWatch {
  let first: 'SIGINT' | 'SIGTERM' | null = null;
  let heard = 0;
  const announce = (name: 'SIGINT' | 'SIGTERM') => {
    if (first) return;
    first = name;
    word[0] ||= name === 'SIGINT' ? 2 : 15;
    opts.onFirst?.(name);
  };
  // The native handler may have seen the signal (and the job stopped) before Node's handler runs.
  const poll = () => { if (!first && NUMBERS[word[0]]) announce(NUMBERS[word[0]]); };
  const handler = (sig: NodeJS.Signals) => {
    const name = sig === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
    if (++heard === 1) { announce(name); return; }
    if (opts.onSecond) opts.onSecond(name);
    else process.exit(CODES[name]);
  };
  // Node's handlers first, then the native one chained in front of them (it calls them in turn).
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  const word = signalWord.watch() ?? new Int32Array(1);
  word[0] = 0;
  setCancelFlag(word);
  return {
    get signal() { poll(); return first; },
    get exitCode() { poll(); return first ? CODES[first] : 0; },
    dispose() {
      poll();
      setCancelFlag(null);
      signalWord.unwatch();
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
