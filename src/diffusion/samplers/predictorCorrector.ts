/**
 * Predictor–corrector sampling: Song et al. 2021, "Score-Based Generative Modeling through Stochastic Differential
 * Equations", Algorithm 1 (PC sampling) with the reverse-diffusion predictor for the discretized VP SDE
 * (Appendix E, eq. 47) and the Langevin corrector with its step size set by a target signal-to-noise ratio
 * (Algorithm 5, VP version).
 *
 * Notation, step from timestep t to the next p (a DDPM step, or a respaced one: β = 1 − ᾱ_t/ᾱ_p, α = 1 − β):
 *   s           s_θ(x, t) = −ε̂/σ_t, σ_t = √(1 − ᾱ_t)
 *   corrector   ε_step = 2α (r ‖z‖/‖s‖)², x ← x + ε_step s + √(2 ε_step) z   (‖·‖: per-sample L2 norm averaged
 *               over the batch, as the reference code; r = the target SNR, default 0.16)
 *   predictor   x ← (2 − √α) x + β s + √β z   (no noise on the last step: the mean is the output)
 * Each step evaluates the model 1 + correctorSteps times.
 */
import { Tensor, add, div, mean, mul, noGrad, randn, reshape, sqrt, sum } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { rangeFail } from '../util.js';
import {
  type Model, type SampleOptions, type SamplerRun, type Spacing, inpaintBlend, predict, resolveOptions,
  sigmaVE, discreteStart,
} from './common.js';
import { DEFAULT_STEPS } from './defaults.js';

export interface PredictorCorrectorOptions extends SampleOptions {
  /** Predictor steps (default T). */
  steps?: number;
  spacing?: Spacing;
  /** Target signal-to-noise ratio r of the Langevin corrector (default 0.16). */
  snr?: number;
  /** Corrector steps per predictor step (default 1; 0 gives the predictor alone). */
  correctorSteps?: number;
}

/** Batch mean of the per-sample L2 norms, as a one-element tensor: computed where x lives (CPU or GPU). */
function meanNorm(x: Tensor): Tensor {
  const b = x.shape[0], flat = reshape(x, [b, x.size / b]);
  return mean(sqrt(sum(mul(flat, flat), 1)));
}

/** Reverse-diffusion predictor + Langevin corrector on the VP SDE, from x_T = noise ~ N(0, I). */
export function* predictorCorrector(model: Model, schedule: NoiseSchedule, noise: Tensor, opts: PredictorCorrectorOptions = {}): SamplerRun {
  const fn = 'predictorCorrector';
  const r = resolveOptions(fn, noise, opts);
  const snr = opts.snr ?? 0.16, nCorr = opts.correctorSteps ?? 1;
  if (!(snr > 0 && Number.isFinite(snr))) rangeFail(fn, `snr must be a positive number, got ${snr}`);
  if (!Number.isInteger(nCorr) || nCorr < 0) rangeFail(fn, `correctorSteps must be a non-negative integer, got ${nCorr}`);
  const start = discreteStart(fn, schedule, noise, r, opts.steps ?? DEFAULT_STEPS.predictorCorrector(schedule.T), opts.spacing ?? 'linspace');
  const { ts, ab } = start;
  let x = start.x;
  let nfe = 0;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i], abT = ab(i), abPrev = ab(i + 1);
    const alpha = abT / abPrev, beta = 1 - alpha, sigma = Math.sqrt(1 - abT);
    for (let k = 0; k < nCorr; k++) {
      const p = predict(fn, model, x, t, abT, r);
      nfe++;
      x = noGrad(() => {
        const s = mul(p.eps, -1 / sigma);
        const z = randn(x.shape, r.gen);
        const ratio = div(meanNorm(z), meanNorm(s));
        const step = mul(mul(ratio, ratio), 2 * alpha * snr * snr);  // a one-element tensor
        return add(add(x, mul(s, step)), mul(z, sqrt(mul(step, 2))));
      });
    }
    const p = predict(fn, model, x, t, abT, r);
    nfe++;
    x = noGrad(() => {
      let next = add(mul(x, 2 - Math.sqrt(alpha)), mul(p.eps, -beta / sigma));
      if (i < ts.length - 1) next = add(next, mul(randn(x.shape, r.gen), Math.sqrt(beta)));
      return inpaintBlend(next, abPrev, 'vp', r);
    });
    yield { step: i + 1, totalSteps: ts.length, t, sigma: sigmaVE(abT), xt: x, x0Pred: p.x0, nfe };
  }
  return x;
}
