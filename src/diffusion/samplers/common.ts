/**
 * What every sampler shares: the model interface, the per-step event, the options common to all of them
 * (prediction type, conditioning, x_0 clipping, inpainting, image-to-image), and the driver `sample`.
 *
 * Two state spaces appear:
 *   VP  x_t = α x_0 + σ ε with α² + σ² = 1 (what the network sees; DDPM, DDIM, predictor–corrector)
 *   VE  x = x_0 + σ_VE ε with σ_VE = σ/α (k-diffusion / EDM; Euler, Heun, DPM-Solver++), x_VP = x/√(1 + σ_VE²)
 * Events always report x_t in VP scale, so a viewer can draw any sampler's frames the same way.
 */
import { Generator as Rng, Tensor, add, defaultGenerator, fmt, mul, noGrad, randn, sameShape, sub } from '../../tensor/index.js';
import { broadcastShapes } from '../../tensor/shape.js';
import { type PredictionType, checkPrediction, epsFromX0, outputToX0Eps } from '../parameterization.js';
import { splitModelOutput } from '../reverse.js';
import type { NoiseSchedule } from '../schedules.js';
import { type X0Clip, applyX0Clip } from '../thresholding.js';
import { fail, rangeFail, timeTensor } from '../util.js';

/** A denoising network as this layer sees it: x_t [B, …], timesteps float32 [B], optional conditioning. */
export type Model = (xt: Tensor, t: Tensor, cond?: Tensor) => Tensor;

/** One sampler step. */
export interface SamplerEvent {
  /** 1-based index of the step, and the number of steps of this run. */
  step: number;
  totalSteps: number;
  /** The model timestep this step evaluated at (real-valued for σ-based samplers). */
  t: number;
  /** σ_VE = √((1 − ᾱ)/ᾱ) at t. */
  sigma: number;
  /** The sample after this step (one noise level lower), VP scale. */
  xt: Tensor;
  /** The x_0 predicted at t during this step. */
  x0Pred: Tensor;
  /** Model evaluations so far. */
  nfe: number;
}

/** A running sampler: iterate it for events; its return value is the final sample. */
export type SamplerRun = Generator<SamplerEvent, Tensor, void>;

export interface InpaintOptions {
  /** The data whose known region is kept (shape of the sample). */
  known: Tensor;
  /** 1 where `known` is kept, 0 where it is generated (fractions blend); broadcastable to the sample. */
  mask: Tensor;
}

export interface Img2ImgOptions {
  /** The input to start from (shape of the sample). */
  x0: Tensor;
  /** In (0, 1]: the fraction of the steps to run; the input is noised to that step's level. */
  strength: number;
}

export interface SampleOptions {
  /** What the model predicts (default 'epsilon'). */
  prediction?: PredictionType;
  /** The model output carries learned-variance channels on axis 1 (Improved DDPM); samplers other than DDPM ignore them. */
  learnedVariance?: boolean;
  /** Passed to the model on every call (with classifierFreeGuidance: the conditional input). */
  cond?: Tensor;
  /** Noise for stochastic steps, inpainting and image-to-image (default: the engine's default generator). */
  gen?: Rng;
  /** Clip or dynamically threshold x̂_0 (ε is then recomputed from the clipped x̂_0). */
  clip?: X0Clip;
  /** Inpainting: after every step the known region is replaced by the data noised to the new level. */
  inpaint?: InpaintOptions;
  /** Image-to-image (SDEdit): start from `x0` noised to `strength`. */
  init?: Img2ImgOptions;
}

/**
 * Runs a sampler to completion and returns its sample. `onStep` sees every event; returning `false` stops early
 * and returns that step's x̂_0.
 */
export function sample(run: SamplerRun, onStep?: (e: SamplerEvent) => void | boolean): Tensor {
  for (;;) {
    const r = run.next();
    if (r.done) return r.value;
    if (onStep && onStep(r.value) === false) {
      run.return(r.value.x0Pred);
      return r.value.x0Pred;
    }
  }
}

/** The options after validation against the sample x (noise) and the schedule. */
export interface Resolved {
  prediction: PredictionType;
  learnedVariance: boolean;
  cond?: Tensor;
  gen: Rng;
  clip?: X0Clip;
  inpaint?: InpaintOptions;
  init?: Img2ImgOptions;
}

export function resolveOptions(fn: string, noise: Tensor, opts: SampleOptions): Resolved {
  if (noise.ndim < 1 || noise.size === 0) fail(fn, `noise must be a non-empty batch [B, …], got ${fmt(noise.shape)}`);
  const prediction = checkPrediction(fn, opts.prediction ?? 'epsilon');
  const { inpaint, init } = opts;
  if (inpaint) {
    if (!sameShape(inpaint.known.shape, noise.shape)) fail(fn, `inpaint known data ${fmt(inpaint.known.shape)} does not match the sample ${fmt(noise.shape)}`);
    let ok = inpaint.mask.ndim <= noise.ndim;
    try { ok &&= sameShape(broadcastShapes(fn, inpaint.mask.shape, noise.shape), noise.shape); } catch { ok = false; }
    if (!ok) fail(fn, `inpaint mask ${fmt(inpaint.mask.shape)} does not broadcast to the sample ${fmt(noise.shape)}`);
    const m = inpaint.mask.data;
    for (let i = 0; i < m.length; i++) if (!(m[i] >= 0 && m[i] <= 1)) rangeFail(fn, `inpaint mask values must lie in [0, 1], found ${m[i]}`);
  }
  if (init) {
    if (!sameShape(init.x0.shape, noise.shape)) fail(fn, `init image ${fmt(init.x0.shape)} does not match the sample ${fmt(noise.shape)}`);
    if (!(init.strength > 0 && init.strength <= 1)) rangeFail(fn, `strength ${init.strength} is out of range (0, 1]`);
  }
  if (opts.cond && (opts.cond.ndim < 1 || opts.cond.shape[0] !== noise.shape[0])) {
    fail(fn, `cond ${fmt(opts.cond.shape)} does not have the batch size ${noise.shape[0]} of the sample ${fmt(noise.shape)}`);
  }
  return { prediction, learnedVariance: opts.learnedVariance ?? false, cond: opts.cond, gen: opts.gen ?? defaultGenerator, clip: opts.clip, inpaint, init };
}

/** The first step index when image-to-image runs `strength` of `n` steps (diffusers' convention). */
export function img2imgStart(fn: string, n: number, init: Img2ImgOptions | undefined): number {
  if (!init) return 0;
  const k = Math.min(Math.floor(n * init.strength), n);
  if (k < 1) rangeFail(fn, `strength ${init.strength} runs no step of ${n}; raise it to at least ${1 / n}`);
  return n - k;
}

/** The state at level ᾱ given x_0 and standard noise, in VP or VE scale. */
export function noiseTo(x0: Tensor, alphaBar: number, space: 'vp' | 've', noise: Tensor): Tensor {
  if (alphaBar === 1) return x0;
  if (space === 'vp') return add(mul(x0, Math.sqrt(alphaBar)), mul(noise, Math.sqrt(1 - alphaBar)));
  return add(x0, mul(noise, Math.sqrt((1 - alphaBar) / alphaBar)));
}

/** Inpainting: the known region replaced by the known data at level ᾱ (fresh noise), the rest kept. */
export function inpaintBlend(x: Tensor, alphaBar: number, space: 'vp' | 've', r: Resolved): Tensor {
  if (!r.inpaint) return x;
  const known = noiseTo(r.inpaint.known, alphaBar, space, randn(x.shape, r.gen));
  return add(x, mul(r.inpaint.mask, sub(known, x)));
}

/** The model's x̂_0 and ε̂ (and the raw variance channels) at VP state x, timestep t, level ᾱ. */
export interface Prediction { x0: Tensor; eps: Tensor; v: Tensor | null }

export function predict(fn: string, model: Model, x: Tensor, t: number, alphaBar: number, r: Resolved, learned = r.learnedVariance,
  keepModelEps = false): Prediction {
  return noGrad(() => {
    const out = model(x, timeTensor(t, x.shape[0]), r.cond);
    const { pred, v } = splitModelOutput(fn, out, x, learned);
    const a = Math.sqrt(alphaBar), s = Math.sqrt(1 - alphaBar);
    let { x0, eps } = outputToX0Eps(pred, x, r.prediction, a, s, fn);
    if (r.clip) {
      x0 = applyX0Clip(x0, r.clip);
      if (!keepModelEps) eps = epsFromX0(x, x0, a, s);
    }
    return { x0, eps, v };
  });
}

// ---- timestep spacings for samplers that run on the discrete schedule

export type Spacing = 'leading' | 'trailing' | 'linspace';
export const SPACINGS: readonly Spacing[] = ['leading', 'trailing', 'linspace'];

/** Rounds to the nearest integer, ties to even (numpy's round and rint, hence diffusers'). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.linspace(start, stop, num) as numpy computes it: i·((stop − start)/(num − 1)) + start, the last = stop. */
export function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/** numpy.arange(start, stop, step) for a float step: length ⌈(stop − start)/step⌉, start + i·((start + step) − start). */
export function npArange(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step)), delta = start + step - start;
  return Array.from({ length: n }, (_, i) => start + i * delta);
}

/**
 * `steps` timesteps of T, descending, exactly as diffusers' DDPM/DDIM schedulers compute them (timestep_spacing;
 * Lin et al. 2023, Table 2), numpy's half-to-even rounding included:
 *   leading   i·⌊T/N⌋ + offset        — the last step never reaches T−1 (Stable Diffusion: offset 1, 981 … 1)
 *   trailing  round(T − i·T/N) − 1   — starts at T−1 (what Lin et al. recommend)
 *   linspace  round(linspace(0, T−1, N))
 * `offset` is diffusers' steps_offset (leading spacing only, as there).
 */
export function spacedTimesteps(fn: string, T: number, steps: number, spacing: Spacing, offset = 0): number[] {
  if (!SPACINGS.includes(spacing)) fail(fn, `unknown timestep spacing ${JSON.stringify(spacing)} (expected ${SPACINGS.join(', ')})`);
  if (!Number.isInteger(steps) || steps < 1 || steps > T) rangeFail(fn, `steps must be an integer in [1, ${T}], got ${steps}`);
  if (!Number.isInteger(offset) || offset < 0 || (spacing === 'leading' && (steps - 1) * Math.floor(T / steps) + offset > T - 1)) {
    rangeFail(fn, `steps offset ${offset} puts a timestep past ${T - 1}`);
  }
  if (spacing === 'leading') return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * Math.floor(T / steps) + offset);
  // numpy's float arange overshoots for some N (61, 103, 121, … of T = 1000) and diffusers then lists a
  // timestep −1 (ᾱ[−1] in PyTorch is the last ᾱ); diffuse leaves it out.
  if (spacing === 'trailing') return npArange(T, 0, -T / steps).map((t) => roundHalfEven(t) - 1).filter((t) => t >= 0);
  return npLinspace(0, T - 1, steps).map(roundHalfEven).reverse();
}

/** Checks an explicit list of model timesteps: strictly decreasing, within [0, T−1], integers unless `fractional`. */
export function checkTimesteps(fn: string, T: number, ts: readonly number[], fractional = false): number[] {
  if (!Array.isArray(ts) || ts.length < 1) fail(fn, 'timesteps must be a non-empty list');
  ts.forEach((t, i) => {
    if (typeof t !== 'number' || !(t >= 0 && t <= T - 1) || (!fractional && !Number.isInteger(t)) || (i > 0 && !(t < ts[i - 1]))) {
      rangeFail(fn, `timesteps must be strictly decreasing ${fractional ? 'numbers' : 'integers'} in [0, ${T - 1}], got ${JSON.stringify(ts.slice(0, 8))}${ts.length > 8 ? '…' : ''}`);
    }
  });
  return [...ts];
}

/** ᾱ at a timestep, or 1 (the data) for t < 0. */
export function alphaBarOrOne(schedule: NoiseSchedule, t: number): number {
  return t < 0 ? 1 : schedule.alphaBarAt(t);
}

export function sigmaVE(alphaBar: number): number {
  return Math.sqrt((1 - alphaBar) / alphaBar);
}

/**
 * The start shared by the discrete-time samplers (DDPM, DDIM, predictor–corrector): the spaced timesteps (cut
 * for image-to-image), ᾱ at step i (1 past the last step) and the initial x_T, blended for inpainting.
 */
export function discreteStart(fn: string, schedule: NoiseSchedule, noise: Tensor, r: Resolved, steps: number, spacing: Spacing,
  explicit?: { timesteps?: readonly number[]; offset?: number }): { ts: number[]; ab: (i: number) => number; x: Tensor } {
  const all = explicit?.timesteps ? checkTimesteps(fn, schedule.T, explicit.timesteps)
    : spacedTimesteps(fn, schedule.T, steps, spacing, explicit?.offset ?? 0);
  const ts = all.slice(img2imgStart(fn, all.length, r.init));
  const ab = (i: number) => (i < ts.length ? schedule.alphasCumprod[ts[i]] : 1);
  const x0 = r.init ? noiseTo(r.init.x0, ab(0), 'vp', randn(noise.shape, r.gen)) : noise;
  return { ts, ab, x: noGrad(() => inpaintBlend(x0, ab(0), 'vp', r)) };
}
