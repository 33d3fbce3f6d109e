/** What the panels share: the loaded assets, DOM look-ups, and the app's state for tests and the info line. */
import type { MLPDenoiser, NoiseSchedule, UNet } from '../../src/index.js';
import type { Digits, LoadedModel } from './assets.js';

export interface App {
  unet: LoadedModel<UNet>;
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
  sampler: string;
  steps: number;
  nfe: number;
  /** Wall time of each sampler step (the model evaluations and the update, not the drawing). */
  msPerStep: number[];
  backend: string;
  state: 'running' | 'done' | 'stopped' | 'error';
  error?: string;
}

declare global {
  interface Window {
    explorer?: { backend: string; runs: RunRecord[]; ready: boolean; error?: string };
  }
}

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el as T;
}

export const num = (id: string, fallback: number) => {
  const v = Number($<HTMLInputElement>(id).value);
  return Number.isFinite(v) ? v : fallback;
};

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
