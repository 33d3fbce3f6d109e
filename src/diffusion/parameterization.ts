/**
 * What the network predicts, and exact conversions between the three choices.
 *
 *   x_t = α x_0 + σ ε,  α = √ᾱ_t, σ = √(1 − ᾱ_t)   (α² + σ² = 1)
 *   ε-prediction  ε̂ (Ho et al. 2020)
 *   x_0-prediction x̂_0
 *   v-prediction  v = α ε − σ x_0 (Salimans & Ho 2022, "Progressive Distillation", §4 and Appendix D)
 *
 *   x_0 = (x_t − σ ε)/α = α x_t − σ v        ε = (x_t − α x_0)/σ = σ x_t + α v
 *   score ∇ log q(x_t) ≈ −ε̂/σ                (Song et al. 2021, "Score-based generative modeling", eq. 13)
 *
 * Each conversion is exact algebra, so ε → x_0 → ε returns ε up to float32 rounding. ε → x_0 divides by α,
 * which is 0 at a zero-terminal-SNR last step: there only x_0- and v-prediction determine x_0.
 */
import { Tensor } from '../tensor/index.js';
import type { NoiseSchedule } from './schedules.js';
import { type TimeLike, alphaBars, axpby, batchOf, checkSameShape, fail, scale, timesteps } from './util.js';

export type PredictionType = 'epsilon' | 'x0' | 'v';
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'x0', 'v'];

export function checkPrediction(fn: string, p: unknown): PredictionType {
  if (!PREDICTION_TYPES.includes(p as PredictionType)) fail(fn, `unknown prediction type ${JSON.stringify(p)} (expected ${PREDICTION_TYPES.join(', ')})`);
  return p as PredictionType;
}

/** Per-sample (α, σ) at real-valued timesteps. */
function coefs(fn: string, schedule: NoiseSchedule, x: Tensor, t: TimeLike): { a: Float64Array; s: Float64Array } {
  const ab = alphaBars(schedule, timesteps(fn, schedule, t, batchOf(fn, x), true));
  return { a: ab.map(Math.sqrt), s: ab.map((v) => Math.sqrt(1 - v)) };
}

// ---- the conversions in terms of (α, σ), one pair per sample; shared with the samplers

export type Coef = ArrayLike<number> | number;
const map = (c: Coef, f: (v: number) => number): Coef => (typeof c === 'number' ? f(c) : Array.from(c, f));

function checkAlpha(fn: string, a: Coef): void {
  const zero = typeof a === 'number' ? a === 0 : Array.prototype.some.call(a, (v: number) => v === 0);
  if (zero) fail(fn, 'x_0 is undefined from ε at ᾱ_t = 0 (zero terminal SNR); use v- or x_0-prediction');
}

export function x0FromEps(xt: Tensor, eps: Tensor, a: Coef, s: Coef, fn = 'x0FromEps'): Tensor {
  checkAlpha(fn, a);
  return axpby(map(a, (v) => 1 / v), xt, typeof a === 'number' ? -(s as number) / a : Array.from(a, (v, i) => -(s as ArrayLike<number>)[i] / v), eps);
}
export function epsFromX0(xt: Tensor, x0: Tensor, a: Coef, s: Coef): Tensor {
  return axpby(map(s, (v) => 1 / v), xt, typeof s === 'number' ? -(a as number) / s : Array.from(s, (v, i) => -(a as ArrayLike<number>)[i] / v), x0);
}
export const x0FromV = (xt: Tensor, v: Tensor, a: Coef, s: Coef): Tensor => axpby(a, xt, map(s, (u) => -u), v);
export const epsFromV = (xt: Tensor, v: Tensor, a: Coef, s: Coef): Tensor => axpby(s, xt, a, v);
export const vFromEpsX0 = (eps: Tensor, x0: Tensor, a: Coef, s: Coef): Tensor => axpby(a, eps, map(s, (u) => -u), x0);

/** (x̂_0, ε̂) from a model output of the given type. */
export function outputToX0Eps(pred: Tensor, xt: Tensor, type: PredictionType, a: Coef, s: Coef, fn: string): { x0: Tensor; eps: Tensor } {
  switch (type) {
    case 'epsilon': return { eps: pred, x0: x0FromEps(xt, pred, a, s, fn) };
    case 'x0': return { x0: pred, eps: epsFromX0(xt, pred, a, s) };
    case 'v': return { x0: x0FromV(xt, pred, a, s), eps: epsFromV(xt, pred, a, s) };
  }
}

// ---- public API at schedule timesteps (names as improved-diffusion's GaussianDiffusion)

/** x̂_0 = (x_t − σ_t ε̂)/√ᾱ_t. */
export function predictStartFromNoise(schedule: NoiseSchedule, xt: Tensor, t: TimeLike, eps: Tensor): Tensor {
  checkSameShape('predictStartFromNoise', 'x_t', xt, 'eps', eps);
  const { a, s } = coefs('predictStartFromNoise', schedule, xt, t);
  return x0FromEps(xt, eps, a, s, 'predictStartFromNoise');
}

/** ε̂ = (x_t − √ᾱ_t x̂_0)/σ_t. */
export function predictNoiseFromStart(schedule: NoiseSchedule, xt: Tensor, t: TimeLike, x0: Tensor): Tensor {
  checkSameShape('predictNoiseFromStart', 'x_t', xt, 'x0', x0);
  const { a, s } = coefs('predictNoiseFromStart', schedule, xt, t);
  return epsFromX0(xt, x0, a, s);
}

/** x̂_0 = √ᾱ_t x_t − σ_t v̂. */
export function predictStartFromV(schedule: NoiseSchedule, xt: Tensor, t: TimeLike, v: Tensor): Tensor {
  checkSameShape('predictStartFromV', 'x_t', xt, 'v', v);
  const { a, s } = coefs('predictStartFromV', schedule, xt, t);
  return x0FromV(xt, v, a, s);
}

/** ε̂ = σ_t x_t + √ᾱ_t v̂. */
export function predictNoiseFromV(schedule: NoiseSchedule, xt: Tensor, t: TimeLike, v: Tensor): Tensor {
  checkSameShape('predictNoiseFromV', 'x_t', xt, 'v', v);
  const { a, s } = coefs('predictNoiseFromV', schedule, xt, t);
  return epsFromV(xt, v, a, s);
}

/** The v-target v = √ᾱ_t ε − σ_t x_0 (diffusers' get_velocity). */
export function velocity(schedule: NoiseSchedule, x0: Tensor, noise: Tensor, t: TimeLike): Tensor {
  checkSameShape('velocity', 'x_0', x0, 'noise', noise);
  const { a, s } = coefs('velocity', schedule, x0, t);
  return vFromEpsX0(noise, x0, a, s);
}

/** Converts a model output of type `from` into type `to` at x_t, t. */
export function convertPrediction(schedule: NoiseSchedule, pred: Tensor, xt: Tensor, t: TimeLike, from: PredictionType, to: PredictionType): Tensor {
  checkPrediction('convertPrediction', from);
  checkPrediction('convertPrediction', to);
  checkSameShape('convertPrediction', 'prediction', pred, 'x_t', xt);
  if (from === to) return pred;
  const { a, s } = coefs('convertPrediction', schedule, xt, t);
  const { x0, eps } = outputToX0Eps(pred, xt, from, a, s, 'convertPrediction');
  return to === 'x0' ? x0 : to === 'epsilon' ? eps : vFromEpsX0(eps, x0, a, s);
}

/** The score estimate ∇_x log q_t(x_t) ≈ −ε̂/σ_t. */
export function score(schedule: NoiseSchedule, xt: Tensor, epsHat: Tensor, t: TimeLike): Tensor {
  checkSameShape('score', 'x_t', xt, 'epsHat', epsHat);
  const { s } = coefs('score', schedule, xt, t);
  return scale(epsHat, s.map((v) => -1 / v));
}
