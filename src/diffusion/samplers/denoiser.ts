/**
 * The bridge from a discrete-time network to the σ-parameterized samplers of k-diffusion / EDM (Karras et al.
 * 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", Table 1, "VP" column).
 *
 * Notation:
 *   x           the VE state x = x_0 + σ n (σ = σ_VE = √((1 − ᾱ)/ᾱ))
 *   D(x; σ)     the denoiser ≈ E[x_0 | x], what the σ-samplers call
 *   c_in        1/√(σ² + 1): x·c_in is the VP input x_t the network was trained on
 *   t(σ)        the real-valued timestep whose log σ interpolates the schedule's discrete log σ's
 *               (NoiseSchedule.sigmaToT, k-diffusion's DiscreteSchedule.sigma_to_t)
 *   D = x̂_0 from the network's ε, x_0 or v output at (x·c_in, t(σ)); for ε: D = x − σ ε̂.
 *
 * Also here: the σ grids the samplers step over, and the driver that runs a σ-sampler on a schedule with the
 * common options (image-to-image, inpainting, events in VP scale).
 */
import { Generator as Rng, Tensor, div, mul, noGrad, randn } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { fail, rangeFail } from '../util.js';
import {
  type Model, type Resolved, type SampleOptions, type SamplerRun, img2imgStart, inpaintBlend, noiseTo, predict, resolveOptions,
} from './common.js';

/** D(x; σ) ≈ E[x_0 | x] for a VE state x at noise level σ > 0. */
export type Denoiser = (x: Tensor, sigma: number) => Tensor;

export type DenoiserOptions = Pick<SampleOptions, 'prediction' | 'learnedVariance' | 'cond' | 'clip'>;

/** k-diffusion's DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser for any prediction type. */
export function denoiserFromModel(model: Model, schedule: NoiseSchedule, opts: DenoiserOptions = {}): Denoiser {
  return denoiserFromResolved('denoiserFromModel', model, schedule, {
    prediction: opts.prediction ?? 'epsilon', learnedVariance: opts.learnedVariance ?? false, cond: opts.cond, clip: opts.clip,
    gen: new Rng(0),
  });
}

/** `timeOf` maps σ to the model timestep (default: the schedule's log-σ interpolation, sigmaToT). */
export function denoiserFromResolved(fn: string, model: Model, schedule: NoiseSchedule, r: Resolved,
  timeOf: (sigma: number) => number = (s) => schedule.sigmaToT(s)): Denoiser {
  return (x: Tensor, sigma: number) => {
    if (!(sigma > 0 && Number.isFinite(sigma))) rangeFail(fn, `the denoiser needs a finite σ > 0, got ${sigma}`);
    const ab = 1 / (1 + sigma * sigma);
    const xt = noGrad(() => mul(x, Math.sqrt(ab)));
    return predict(fn, model, xt, timeOf(sigma), ab, r).x0;
  };
}

// ---- σ grids: n noise levels, descending, then 0

export type SigmaSpacing = 'karras' | 'timeUniform' | 'logSnrUniform';
const SIGMA_SPACINGS: readonly SigmaSpacing[] = ['karras', 'timeUniform', 'logSnrUniform'];

/** Karras et al. 2022, eq. 5: σ_i = (σ_max^{1/ρ} + i/(n−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, then 0. */
export function karrasSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 7): number[] {
  if (!Number.isInteger(n) || n < 1) rangeFail('karrasSigmas', `n must be a positive integer, got ${n}`);
  if (!(sigmaMin > 0 && sigmaMax >= sigmaMin && Number.isFinite(sigmaMax))) rangeFail('karrasSigmas', `need 0 < sigmaMin ≤ sigmaMax < ∞, got ${sigmaMin}, ${sigmaMax}`);
  if (!(rho > 0)) rangeFail('karrasSigmas', `rho must be positive, got ${rho}`);
  const a = sigmaMax ** (1 / rho), b = sigmaMin ** (1 / rho);
  const out = Array.from({ length: n }, (_, i) => (a + (n === 1 ? 0 : i / (n - 1)) * (b - a)) ** rho);
  return [...out, 0];
}

export interface SigmaGridOptions {
  /** 'karras' (ρ-spaced, the default), 'timeUniform' (σ at evenly spaced real timesteps T−1 … 0), 'logSnrUniform' (even in log σ). */
  spacing?: SigmaSpacing;
  /** Defaults: the schedule's σ_VE at t = 0 and its largest finite σ_VE. */
  sigmaMin?: number;
  sigmaMax?: number;
  rho?: number;
}

/** `steps` noise levels from σ_max down to σ_min, then 0. */
export function sigmaGrid(schedule: NoiseSchedule, steps: number, opts: SigmaGridOptions = {}): number[] {
  const spacing = opts.spacing ?? 'karras';
  if (!SIGMA_SPACINGS.includes(spacing)) fail('sigmaGrid', `unknown sigma spacing ${JSON.stringify(spacing)} (expected ${SIGMA_SPACINGS.join(', ')})`);
  if (!Number.isInteger(steps) || steps < 1) rangeFail('sigmaGrid', `steps must be a positive integer, got ${steps}`);
  const lo = opts.sigmaMin ?? schedule.sigmaMin, hi = opts.sigmaMax ?? schedule.sigmaMax;
  if (!(lo > 0 && hi >= lo && Number.isFinite(hi))) rangeFail('sigmaGrid', `need 0 < sigmaMin ≤ sigmaMax < ∞, got ${lo}, ${hi}`);
  if (spacing === 'karras') return karrasSigmas(steps, lo, hi, opts.rho ?? 7);
  const frac = (i: number) => (steps === 1 ? 0 : i / (steps - 1));
  if (spacing === 'logSnrUniform') {
    return [...Array.from({ length: steps }, (_, i) => Math.exp(Math.log(hi) + frac(i) * (Math.log(lo) - Math.log(hi)))), 0];
  }
  const t0 = schedule.sigmaToT(hi), t1 = schedule.sigmaToT(lo);
  return [...Array.from({ length: steps }, (_, i) => schedule.tToSigma(t0 + frac(i) * (t1 - t0))), 0];
}

// ---- running a σ-sampler

/** What a σ-sampler reports after step i (from sigmas[i] to sigmas[i+1]). */
export interface SigmaStep {
  i: number;
  sigma: number;
  sigmaNext: number;
  /** The state after the step (VE). */
  x: Tensor;
  denoised: Tensor;
  nfe: number;
}

export interface SigmaSamplerHooks {
  gen?: Rng;
  /** Called on each new state at σ_next (inpainting uses it). */
  afterStep?: (x: Tensor, sigmaNext: number) => Tensor;
}

export type SigmaSampler = (denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks) => Generator<SigmaStep, Tensor, void>;

export function checkSigmas(fn: string, sigmas: readonly number[]): void {
  if (sigmas.length < 2) fail(fn, `needs at least two sigmas (a level and the final 0), got ${sigmas.length}`);
  for (let i = 0; i < sigmas.length; i++) {
    const s = sigmas[i];
    const last = i === sigmas.length - 1;
    if (!(s >= 0 && Number.isFinite(s)) || (i > 0 && !(s < sigmas[i - 1])) || (s === 0 && !last)) {
      rangeFail(fn, `sigmas must be finite, strictly decreasing and positive (the last may be 0), got ${JSON.stringify(sigmas.slice(0, 8))}${sigmas.length > 8 ? '…' : ''}`);
    }
  }
}

export interface SigmaRunOptions extends SampleOptions, SigmaGridOptions {
  /** Number of noise levels (steps) before σ = 0. */
  steps?: number;
  /** An explicit grid (descending; usually ending in 0, or in σ_min as diffusers' final_sigmas_type) instead of steps/spacing. */
  sigmas?: number[];
  /**
   * The model timestep of each level of `sigmas` (same order; the final level needs none) instead of the log-σ
   * interpolation: e.g. diffusers' rounded timesteps on Karras σ's, or its fractional linspace timesteps.
   */
  timesteps?: number[];
  /** x_T = noise · initNoiseSigma (default √(1 + σ_0²), the VE image of x_T ~ N(0, I); diffusers' Euler and Heun
   *  use σ_0 for linspace and trailing spacing). */
  initNoiseSigma?: number;
  /** Scale of the returned sample when the last σ is not 0: 'vp' (default, as the events) or 've' (x_0 + σ n). */
  outputScale?: 'vp' | 've';
}

/**
 * Runs a σ-sampler on a discrete schedule with the common options: the start x = noise · √(1 + σ_0²) (the VE
 * image of x_T ~ N(0, I)) or, for image-to-image, x_0 + σ_k n; inpainting after each step; events in VP scale.
 */
export function* runSigmaSampler(fn: string, sampler: SigmaSampler, model: Model, schedule: NoiseSchedule, noise: Tensor,
  opts: SigmaRunOptions, defaultSteps: number): SamplerRun {
  const r = resolveOptions(fn, noise, opts);
  const all = opts.sigmas ?? sigmaGrid(schedule, opts.steps ?? defaultSteps, opts);
  checkSigmas(fn, all);
  const first = img2imgStart(fn, all.length - 1, r.init);
  const sigmas = all.slice(first);
  let timeOf: ((s: number) => number) | undefined;
  if (opts.timesteps) {
    const ts = opts.timesteps;
    if (!opts.sigmas) fail(fn, 'timesteps need an explicit sigmas grid');
    if (ts.length !== all.length - 1 && ts.length !== all.length) fail(fn, `${ts.length} timesteps for ${all.length - 1} noise levels`);
    ts.forEach((t) => { if (!(t >= 0 && t <= schedule.T - 1)) rangeFail(fn, `timestep ${t} is out of range [0, ${schedule.T - 1}]`); });
    const byLevel = new Map(all.slice(0, ts.length).map((s, i) => [s, ts[i]]));
    timeOf = (s) => byLevel.get(s) ?? schedule.sigmaToT(s);
  }
  const initScale = opts.initNoiseSigma ?? Math.sqrt(1 + sigmas[0] ** 2);
  if (!(initScale > 0 && Number.isFinite(initScale))) rangeFail(fn, `initNoiseSigma must be a finite number > 0, got ${initScale}`);
  const outScale = opts.outputScale ?? 'vp';
  if (outScale !== 'vp' && outScale !== 've') rangeFail(fn, `outputScale must be 'vp' or 've', got ${JSON.stringify(outScale)}`);
  const ab = (s: number) => 1 / (1 + s * s);
  let x = r.init ? noiseTo(r.init.x0, ab(sigmas[0]), 've', randn(noise.shape, r.gen)) : noGrad(() => mul(noise, initScale));
  x = noGrad(() => inpaintBlend(x, ab(sigmas[0]), 've', r));
  const denoiser = denoiserFromResolved(fn, model, schedule, r, timeOf);
  const run = sampler(denoiser, x, sigmas, {
    gen: r.gen,
    afterStep: r.inpaint ? (y, s) => noGrad(() => inpaintBlend(y, ab(s), 've', r)) : undefined,
  });
  const total = sigmas.length - 1;
  for (;;) {
    const it = run.next();
    if (it.done) {
      const last = sigmas[sigmas.length - 1];
      return last === 0 || outScale === 've' ? it.value : noGrad(() => div(it.value, Math.sqrt(1 + last * last)));
    }
    const e = it.value;
    yield {
      step: e.i + 1, totalSteps: total, t: timeOf ? timeOf(e.sigma) : schedule.sigmaToT(e.sigma), sigma: e.sigma,
      xt: noGrad(() => div(e.x, Math.sqrt(1 + e.sigmaNext ** 2))), x0Pred: e.denoised, nfe: e.nfe,
    };
  }
}
