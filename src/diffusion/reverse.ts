/**
 * The reverse process p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), Σ_θ(x_t, t)) (Ho et al. 2020, eq. 1; Nichol & Dhariwal
 * 2021, §3.1).
 *
 *   μ_θ = μ̃_t(x_t, x̂_0)   the posterior mean with the predicted x_0 in place of x_0
 *   Σ_θ: 'fixedLarge'  β_t   (upper bound on the reverse variance; at t = 0 Improved DDPM uses β̃_1 instead)
 *        'fixedSmall'  β̃_t  (lower bound; log clipped at t = 0 to log β̃_1)
 *        'learnedRange' exp(f log β_t + (1 − f) log β̃_t), f = (v + 1)/2, where v is the network's extra output
 *                      channels (Improved DDPM eq. 15). v is meant to lie in [−1, 1] but is not clamped, as in the
 *                      reference implementation.
 *
 * A learned-variance network returns twice the channels of x_t on axis 1: [prediction, v].
 */
import { Generator, Tensor, add, defaultGenerator, exp, fmt, mul, noGrad, randn, sameShape, split, sub, tensor } from '../tensor/index.js';
import type { Model } from './samplers/common.js';
import { type PredictionType, checkPrediction, outputToX0Eps } from './parameterization.js';
import type { NoiseSchedule } from './schedules.js';
import { type X0Clip, applyX0Clip } from './thresholding.js';
import { type TimeLike, axpby, batchOf, coefTensor, fail, gather, timesteps } from './util.js';

export type VarianceType = 'fixedLarge' | 'fixedSmall' | 'learnedRange';
export const VARIANCE_TYPES: readonly VarianceType[] = ['fixedLarge', 'fixedSmall', 'learnedRange'];

export function checkVariance(fn: string, v: unknown): VarianceType {
  if (!VARIANCE_TYPES.includes(v as VarianceType)) fail(fn, `unknown variance type ${JSON.stringify(v)} (expected ${VARIANCE_TYPES.join(', ')})`);
  return v as VarianceType;
}

/**
 * Splits a model output into the prediction and (when `learned`) the variance channels v, checking its shape
 * against x_t: equal, or with axis 1 doubled when the variance is learned.
 */
export function splitModelOutput(fn: string, out: Tensor, xt: Tensor, learned: boolean): { pred: Tensor; v: Tensor | null } {
  if (!learned) {
    if (!sameShape(out.shape, xt.shape)) fail(fn, `model output ${fmt(out.shape)} does not match x_t ${fmt(xt.shape)}`);
    return { pred: out, v: null };
  }
  const want = [...xt.shape];
  if (want.length < 2) fail(fn, `a learned variance needs x_t with a channel axis (axis 1), got ${fmt(xt.shape)}`);
  want[1] *= 2;
  if (!sameShape(out.shape, want)) fail(fn, `model output ${fmt(out.shape)} does not match x_t ${fmt(xt.shape)} with learned variance (expected ${fmt(want)})`);
  const [pred, v] = split(out, 2, 1);
  return { pred, v };
}

/** Log-variance of p_θ from the interpolation variable v: f log β + (1 − f) log β̃, f = (v + 1)/2. */
export function learnedRangeLogVariance(v: Tensor, logBeta: ArrayLike<number>, logBetaTilde: ArrayLike<number>): Tensor {
  const hi = coefTensor(logBeta, v), lo = coefTensor(logBetaTilde, v);
  const frac = mul(add(v, 1), 0.5);
  return add(lo, mul(frac, sub(hi, lo)));
}

export interface ReverseOptions {
  /** What the network predicts (default 'epsilon'). */
  prediction?: PredictionType;
  /** Σ_θ (default 'fixedLarge', as DDPM's σ_t² = β_t). */
  variance?: VarianceType;
  /** Clip or dynamically threshold x̂_0 before forming the mean. */
  clip?: X0Clip;
}

export interface PMeanVariance {
  mean: Tensor;
  /** log Σ_θ: per sample [B, 1, …] for fixed variances, per element for a learned one. */
  logVariance: Tensor;
  variance: Tensor;
  x0Pred: Tensor;
  epsPred: Tensor;
}

/** μ_θ and Σ_θ of p_θ(x_{t−1} | x_t) from a model output at integer timesteps t. */
export function pMeanVariance(schedule: NoiseSchedule, modelOutput: Tensor, xt: Tensor, t: TimeLike, opts: ReverseOptions = {}): PMeanVariance {
  const fn = 'pMeanVariance';
  const prediction = checkPrediction(fn, opts.prediction ?? 'epsilon');
  const variance = checkVariance(fn, opts.variance ?? 'fixedLarge');
  const ts = timesteps(fn, schedule, t, batchOf(fn, xt));
  const { pred, v } = splitModelOutput(fn, modelOutput, xt, variance === 'learnedRange');
  const a = gather(schedule.sqrtAlphasCumprod, ts), s = gather(schedule.sigmas, ts);
  let { x0, eps } = outputToX0Eps(pred, xt, prediction, a, s, fn);
  if (opts.clip) {
    x0 = applyX0Clip(x0, opts.clip);
    eps = axpby(s.map((u) => 1 / u), xt, Array.from(a, (u, i) => -u / s[i]), x0);
  }
  const mean = axpby(gather(schedule.posteriorMeanCoef1, ts), x0, gather(schedule.posteriorMeanCoef2, ts), xt);
  const clipped = gather(schedule.posteriorLogVarianceClipped, ts);
  let logVariance: Tensor;
  if (variance === 'fixedSmall') logVariance = coefTensor(clipped, xt);
  else {
    const logBeta = ts.map((u) => Math.log(schedule.betas[u]));
    if (variance === 'learnedRange') logVariance = learnedRangeLogVariance(v!, logBeta, clipped);
    // β_t, except β̃_1 at t = 0 (as Improved DDPM): the decoder's variance is not the much larger β_0.
    else logVariance = coefTensor(ts.map((u, i) => (u === 0 ? clipped[i] : logBeta[i])), xt);
  }
  return { mean, logVariance, variance: exp(logVariance), x0Pred: x0, epsPred: eps };
}

/**
 * One ancestral step x_{t−1} ~ p_θ(x_{t−1} | x_t) at integer timesteps (no noise where t = 0), as Ho et al. 2020
 * Algorithm 2, line 4. The samplers in samplers/ run whole chains; this is the single step for custom loops.
 */
export function pSample(schedule: NoiseSchedule, model: Model, xt: Tensor, t: TimeLike,
  opts: ReverseOptions & { cond?: Tensor; gen?: Generator } = {}): { sample: Tensor; x0Pred: Tensor } {
  const fn = 'pSample';
  const b = batchOf(fn, xt);
  const ts = timesteps(fn, schedule, t, b);
  return noGrad(() => {
    const p = pMeanVariance(schedule, model(xt, tensor(Float32Array.from(ts), [b]), opts.cond), xt, ts, opts);
    const noiseScale = mul(exp(mul(p.logVariance, 0.5)), coefTensor(ts.map((u) => (u === 0 ? 0 : 1)), xt));
    return { sample: add(p.mean, mul(noiseScale, randn(xt.shape, opts.gen ?? defaultGenerator))), x0Pred: p.x0Pred };
  });
}
