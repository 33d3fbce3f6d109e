/**
 * The forward (noising) process of DDPM (Ho et al. 2020, §2 and eqs. 4, 6, 7).
 *
 *   q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I)                    qStep, qStepMeanVariance
 *   q(x_t | x_0)     = N(√ᾱ_t x_0, (1 − ᾱ_t) I)                  qSample, qMeanVariance
 *   q(x_{t−1} | x_t, x_0) = N(μ̃_t(x_t, x_0), β̃_t I)              qPosteriorMeanVariance
 *     μ̃_t = (√ᾱ_{t−1} β_t / (1 − ᾱ_t)) x_0 + (√α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)) x_t
 *     β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
 *
 * Timesteps are indices 0 … T−1 (see schedules.ts); x_{−1} is the data. Every function takes one timestep for
 * the batch or one per sample (the batch is the first axis).
 */
import { Generator, Tensor, defaultGenerator, randn } from '../tensor/index.js';
import type { NoiseSchedule } from './schedules.js';
import { type TimeLike, alphaBars, axpby, batchOf, checkSameShape, gather, scale, timesteps } from './util.js';

export interface MeanVariance {
  mean: Tensor;
  /** Per-sample variance (isotropic), float64. */
  variance: Float64Array;
  logVariance: Float64Array;
}

/** Mean and variance of q(x_t | x_{t−1}) (x_{t−1} is the data when t = 0). */
export function qStepMeanVariance(schedule: NoiseSchedule, xPrev: Tensor, t: TimeLike): MeanVariance {
  const ts = timesteps('qStepMeanVariance', schedule, t, batchOf('qStepMeanVariance', xPrev));
  const beta = gather(schedule.betas, ts);
  return { mean: scale(xPrev, beta.map((b) => Math.sqrt(1 - b))), variance: beta, logVariance: beta.map(Math.log) };
}

/** One Markov step: x_t = √α_t x_{t−1} + √β_t ε. */
export function qStep(schedule: NoiseSchedule, xPrev: Tensor, t: TimeLike, noise?: Tensor, gen: Generator = defaultGenerator): Tensor {
  const ts = timesteps('qStep', schedule, t, batchOf('qStep', xPrev));
  const eps = noise ?? randn(xPrev.shape, gen);
  if (noise) checkSameShape('qStep', 'x_{t-1}', xPrev, 'noise', noise);
  const beta = gather(schedule.betas, ts);
  return axpby(beta.map((b) => Math.sqrt(1 - b)), xPrev, beta.map(Math.sqrt), eps);
}

/** Mean and variance of q(x_t | x_0). Real-valued t is allowed (ᾱ interpolated as NoiseSchedule.alphaBarAt). */
export function qMeanVariance(schedule: NoiseSchedule, x0: Tensor, t: TimeLike): MeanVariance {
  const ts = timesteps('qMeanVariance', schedule, t, batchOf('qMeanVariance', x0), true);
  const ab = alphaBars(schedule, ts);
  const v = ab.map((a) => 1 - a);
  return { mean: scale(x0, ab.map(Math.sqrt)), variance: v, logVariance: v.map(Math.log) };
}

/** Closed-form sample of q(x_t | x_0): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε. Real-valued t is allowed. */
export function qSample(schedule: NoiseSchedule, x0: Tensor, t: TimeLike, noise?: Tensor, gen: Generator = defaultGenerator): Tensor {
  const ts = timesteps('qSample', schedule, t, batchOf('qSample', x0), true);
  const eps = noise ?? randn(x0.shape, gen);
  if (noise) checkSameShape('qSample', 'x_0', x0, 'noise', noise);
  const ab = alphaBars(schedule, ts);
  return axpby(ab.map(Math.sqrt), x0, ab.map((a) => Math.sqrt(1 - a)), eps);
}

export interface PosteriorMeanVariance extends MeanVariance {
  /** log β̃_t with t = 0 clipped to log β̃_1 (β̃_0 = 0): the value Improved DDPM's learned range starts from. */
  logVarianceClipped: Float64Array;
}

/** q(x_{t−1} | x_t, x_0): mean μ̃_t, variance β̃_t and clipped log-variance. */
export function qPosteriorMeanVariance(schedule: NoiseSchedule, x0: Tensor, xt: Tensor, t: TimeLike): PosteriorMeanVariance {
  checkSameShape('qPosteriorMeanVariance', 'x_0', x0, 'x_t', xt);
  const ts = timesteps('qPosteriorMeanVariance', schedule, t, batchOf('qPosteriorMeanVariance', xt));
  const variance = gather(schedule.posteriorVariance, ts);
  return {
    mean: axpby(gather(schedule.posteriorMeanCoef1, ts), x0, gather(schedule.posteriorMeanCoef2, ts), xt),
    variance,
    logVariance: variance.map(Math.log),
    logVarianceClipped: gather(schedule.posteriorLogVarianceClipped, ts),
  };
}

/** q(x_{t−1} | x_t, x_0) under the paper's name (Ho et al. 2020, eq. 6). */
export const qPosterior = qPosteriorMeanVariance;
