/**
 * The explorer's input rules: what each field accepts, per sampler, and the hints for settings that run but are
 * known to give poor results. Pure functions (no DOM), so Node tests check them directly. A value outside its
 * rule is never clamped or replaced: the field shows why, and nothing runs.
 */
import type { SamplerKind } from '../../src/index.js';

export type Parsed = { ok: true; value: number } | { ok: false; error: string };

export interface Rule {
  /** Whole numbers only (written as plain digits). */
  integer: boolean;
  min: number;
  max: number;
}

/** Parses a field's text by a rule; the error says what the field accepts. */
export function parseField(raw: string, rule: Rule): Parsed {
  const text = raw.trim();
  const range = `${rule.integer ? 'a whole number' : 'a number'} from ${fmt(rule.min)} to ${fmt(rule.max)}`;
  if (text === '') return { ok: false, error: `empty: enter ${range}` };
  if (rule.integer ? !/^[+-]?\d+$/.test(text) : !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    return { ok: false, error: `'${text.length > 12 ? `${text.slice(0, 12)}…` : text}' is not ${rule.integer ? 'a whole number' : 'a number'}: enter ${range}` };
  }
  const value = Number(text);
  if (!Number.isFinite(value) || value < rule.min || value > rule.max) return { ok: false, error: `out of range: enter ${range}` };
  return { ok: true, value: Object.is(value, -0) ? 0 : value };
}

const fmt = (v: number) => (Math.abs(v) >= 1e5 ? v.toLocaleString('en-US') : String(v));

/** The schedule's length: every sampler here takes at most T steps. */
export const MAX_STEPS = 1000;

/**
 * Steps per sampler. Every sampler takes 1 to T steps; the discrete ones (DDPM, DDIM, predictor–corrector)
 * visit distinct timesteps, the σ-based ones (Euler, Heun) are capped at T too so a run stays bounded.
 */
export function stepsRule(kind: SamplerKind): Rule {
  switch (kind) {
    case 'heun': return { integer: true, min: 1, max: 500 }; // two network runs per step
    case 'predictorCorrector': return { integer: true, min: 1, max: 500 }; // predictor + corrector per step
    default: return { integer: true, min: 1, max: MAX_STEPS };
  }
}

/** The score view's samplers need a start and an end timestep. */
export const SCORE_STEPS: Rule = { integer: true, min: 2, max: MAX_STEPS };

/** Seeds are 32-bit: the generator would fold larger or negative ones onto these. */
export const SEED: Rule = { integer: true, min: 0, max: 2 ** 32 - 1 };

/** Classifier-free guidance scale. Beyond 20 the two predictions' difference, amplified, saturates every pixel. */
export const GUIDANCE: Rule = { integer: false, min: 0, max: 20 };

/** Known failures at few steps, measured on the explorer's MNIST model (samples that are still noise). */
export function samplerHint(kind: SamplerKind, steps: number): string {
  if (kind === 'heun' && steps >= 2 && steps <= 3) return `Heun with ${steps} steps returns noise with this model: use 4 or more.`;
  if (kind === 'predictorCorrector' && steps <= 5) return `predictor–corrector with ${steps} step${steps === 1 ? '' : 's'} returns noise with this model: use more than 5.`;
  return '';
}

/** Guidance above this is far outside the usual 1–5 (very large scales give a checkerboard). */
export const GUIDANCE_EXTREME = 8;

export function guidanceHint(guidance: number, classChosen: boolean): string {
  if (!classChosen) return '';
  if (guidance > GUIDANCE_EXTREME) return `guidance ${guidance} is extreme (the usual range is 1–5): expect over-saturated, blown-out strokes.`;
  return '';
}

/**
 * The hint under the reverse panel while a distilled student is chosen: why its sampler, steps and guidance are
 * fixed (`guidance` is undefined until its description has loaded), and what class "none" gives.
 */
export function distilledHint(steps: number, guidance: number | undefined, classChosen: boolean): string {
  const s = `${steps} step${steps === 1 ? '' : 's'}`;
  return [
    `Distilled student: it learned to sample with exactly DDIM in ${s} (one network run each), so sampler and steps are fixed;`,
    guidance === undefined ? 'its guidance is folded into its weights.' : `guidance ${guidance} is folded into its weights (not applied again).`,
    classChosen ? '' : 'Class “none” gives unconditional digits (guidance needs a class).',
    'Inpainting keeps the full UNet and its settings.',
  ].filter(Boolean).join(' ');
}

/** The digit index of the forward view. */
export const digitRule = (n: number): Rule => ({ integer: true, min: 0, max: n - 1 });

/** Training settings. */
export const TRAIN_RULES = {
  batch: { integer: true, min: 1, max: 256 } as Rule,
  steps: { integer: true, min: 1, max: 100_000 } as Rule,
  lr: { integer: false, min: 1e-6, max: 0.1 } as Rule,
  every: { integer: true, min: 0, max: 100_000 } as Rule,
};
