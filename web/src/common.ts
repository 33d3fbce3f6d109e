/** What the panels share: the loaded assets, DOM look-ups, and the app's state for tests and the info line. */
import type { MLPDenoiser, NoiseSchedule, UNet } from '../../src/index.js';
import type { Digits, LoadedModel } from './assets.js';
import { parseField, type Rule } from './validate.js';

export interface App {
  /** The full MNIST UNet (loaded with the page). */
  unet: LoadedModel<UNet>;
  /** A model of MNIST_MODELS by name (the full UNet, or a distilled student fetched on first use). */
  mnist: (name: string) => Promise<LoadedModel<UNet>>;
  digits: Digits;
  /** The 2-D toy models, loaded on first use. */
  toy: (name: string) => Promise<LoadedModel<MLPDenoiser>>;
  /** The backend in use ('js' or 'webgpu'). */
  backend: string;
  /** The digit index chosen in the forward view (inpainting uses it too). */
  digitIndex: number;
  onDigitChange: (() => void)[];
}

/** Read by the end-to-end test and shown in the page. */
export interface RunRecord {
  what: 'sample' | 'inpaint' | 'score';
  /** The MNIST model sampled (MNIST_MODELS name). */
  model?: string;
  sampler: string;
  steps: number;
  nfe: number;
  /** Wall time of each sampler step (the model evaluations and the update, not the drawing). */
  msPerStep: number[];
  /** performance.now() when each step's results were back (the step ended). */
  stepEndedAt: number[];
  /** performance.now() when Stop was pressed, and when the run ended as stopped. */
  stopPressedAt?: number;
  stoppedAt?: number;
  backend: string;
  state: 'running' | 'done' | 'stopped' | 'error';
  error?: string;
}

/** The Train view's state, for the end-to-end test. */
export interface TrainRecord {
  state: 'idle' | 'running' | 'paused' | 'done' | 'error';
  step: number;
  totalSteps: number;
  losses: number[];
  /** Steps at which a sample grid was drawn. */
  grids: number[];
  error?: string;
}

declare global {
  interface Window {
    explorer?: {
      backend: string; runs: RunRecord[]; ready: boolean; error?: string;
      /** Set once the service worker has cached the app and its files. */
      offlineReady?: boolean;
      train?: TrainRecord;
    };
  }
}

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el as T;
}

/** A range slider's value (always a number within its bounds). */
export const sliderValue = (id: string) => Number($<HTMLInputElement>(id).value);

/** The message element under a field (made on first use). */
function messageFor(input: HTMLElement): HTMLElement {
  const id = `${input.id}-msg`;
  let msg = document.getElementById(id);
  if (!msg) {
    msg = document.createElement('span');
    msg.id = id;
    msg.className = 'msg';
    msg.setAttribute('role', 'alert');
    (input.closest('.field') ?? input.parentElement!).append(msg);
    input.setAttribute('aria-describedby', id);
  }
  return msg;
}

/** Shows (or clears, with '') a field's error next to it. */
export function showFieldError(input: HTMLElement, error: string): void {
  messageFor(input).textContent = error;
  if (error) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** Reads a text field by its rule, showing the error next to it; null when invalid. */
export function readField(id: string, rule: Rule): number | null {
  const input = $<HTMLInputElement>(id);
  const r = parseField(input.value, rule);
  showFieldError(input, r.ok ? '' : r.error);
  return r.ok ? r.value : null;
}

/**
 * Stop for a running loop: `request()` marks it and settles `stopped`, which the loop races against the step it
 * awaits, so a Stop takes effect while a step is still on the GPU.
 */
export class RunControl {
  requested = false;
  pressedAt = 0;
  readonly stopped: Promise<typeof STOPPED>;
  private resolve!: (v: typeof STOPPED) => void;
  constructor() {
    this.stopped = new Promise((r) => { this.resolve = r; });
  }
  request(): void {
    if (this.requested) return;
    this.requested = true;
    this.pressedAt = performance.now();
    this.resolve(STOPPED);
  }
}
export const STOPPED = Symbol('stopped');

export function fillSelect(sel: HTMLSelectElement, options: [value: string, label: string][], selected?: string): void {
  sel.replaceChildren(...options.map(([value, label]) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    if (value === selected) o.selected = true;
    return o;
  }));
}

export function record(r: RunRecord): RunRecord {
  window.explorer?.runs.push(r);
  return r;
}

export const mean = (a: number[]) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : NaN);

export type { NoiseSchedule };
