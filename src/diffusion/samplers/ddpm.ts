/**
 * DDPM ancestral sampling: Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Algorithm 2, with the
 * learned variance of Nichol & Dhariwal 2021 ("Improved DDPM", eq. 15) and their respacing (§4: a subsequence
 * S of timesteps is itself a diffusion with β_{S_i} = 1 − ᾱ_{S_i}/ᾱ_{S_{i−1}}).
 *
 * Notation, step from timestep t to the next one p (p = the data after the last step, ᾱ_p = 1):
 *   ab, abPrev     ᾱ_t, ᾱ_p
 *   beta           β = 1 − ᾱ_t/ᾱ_p                      (β_t when every step is taken)
 *   betaTilde      β̃ = β (1 − ᾱ_p)/(1 − ᾱ_t)
 *   x0, eps        x̂_0, ε̂ from the model
 *   mean           μ̃(x_t, x̂_0) = (√ᾱ_p β/(1 − ᾱ_t)) x̂_0 + (√(1 − β)(1 − ᾱ_p)/(1 − ᾱ_t)) x_t
 *   x ← mean + σ z with σ² = β ('fixedLarge'), β̃ ('fixedSmall') or the learned interpolation; no noise on the
 *   last step.
 */
import { Tensor, add, exp, mul, noGrad, randn } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { type VarianceType, checkVariance, learnedRangeLogVariance } from '../reverse.js';
import { rangeFail } from '../util.js';
import {
  type Model, type SampleOptions, type SamplerRun, type Spacing, inpaintBlend, predict, resolveOptions,
  sigmaVE, discreteStart,
} from './common.js';
import { DEFAULT_STEPS } from './defaults.js';

export interface DdpmOptions extends SampleOptions {
  /** Number of steps (default T: the original sampler); fewer respaces the schedule. */
  steps?: number;
  /** Which timesteps when steps < T (default 'linspace', as Improved DDPM's even spacing). */
  spacing?: Spacing;
  /** σ_t² (default 'fixedLarge' = β_t, DDPM's choice for the best samples). 'learnedRange' reads the model's extra channels. */
  variance?: VarianceType;
  /** Added to leading-spacing timesteps (diffusers' steps_offset). */
  stepsOffset?: number;
  /** Explicit model timesteps, strictly decreasing (instead of steps and spacing). */
  timesteps?: number[];
  /**
   * Noise on the last step: 'never' (default; the last step returns the mean) or 'ifPositive': when its timestep
   * is above 0, as diffusers' DDPMScheduler (a leading grid with steps_offset ends at t = 1 and still adds noise).
   */
  lastStepNoise?: 'never' | 'ifPositive';
  /** Where each step lands: the next listed timestep (default) or t − ⌊T/N⌋ ('stride', diffusers before 0.32). */
  prevTimestep?: 'next' | 'stride';
}

/** DDPM ancestral sampler from x_T = noise ~ N(0, I). */
export function* ddpm(model: Model, schedule: NoiseSchedule, noise: Tensor, opts: DdpmOptions = {}): SamplerRun {
  const fn = 'ddpm';
  const r = resolveOptions(fn, noise, opts);
  const variance = checkVariance(fn, opts.variance ?? 'fixedLarge');
  const learned = variance === 'learnedRange' || r.learnedVariance;
  const start = discreteStart(fn, schedule, noise, r, opts.steps ?? DEFAULT_STEPS.ddpm(schedule.T), opts.spacing ?? 'linspace',
    { timesteps: opts.timesteps, offset: opts.stepsOffset });
  const lastNoise = opts.lastStepNoise ?? 'never';
  if (lastNoise !== 'never' && lastNoise !== 'ifPositive') rangeFail(fn, `lastStepNoise must be 'never' or 'ifPositive', got ${JSON.stringify(lastNoise)}`);
  const { ts } = start;
  const prevMode = opts.prevTimestep ?? 'next';
  if (prevMode !== 'next' && prevMode !== 'stride') rangeFail(fn, `prevTimestep must be 'next' or 'stride', got ${JSON.stringify(prevMode)}`);
  const stride = Math.floor(schedule.T / (opts.timesteps?.length ?? opts.steps ?? DEFAULT_STEPS.ddpm(schedule.T)));
  const ab = (i: number) => (i < ts.length ? schedule.alphasCumprod[ts[i]] : 1);
  const abNext = (i: number) => {
    if (prevMode === 'next') return ab(i + 1);
    const p = ts[i] - stride;
    return p >= 0 ? schedule.alphasCumprod[p] : 1;
  };
  let x = start.x;
  let nfe = 0;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i], abT = ab(i), abPrev = abNext(i);
    const p = predict(fn, model, x, t, abT, r, learned);
    nfe++;
    x = noGrad(() => {
      const beta = 1 - abT / abPrev;
      // Floored as diffusers does: β̃ is 0 on a last step that still adds noise.
      const betaTilde = Math.max((beta * (1 - abPrev)) / (1 - abT), 1e-20);
      let next = add(mul(p.x0, (Math.sqrt(abPrev) * beta) / (1 - abT)), mul(x, (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - abT)));
      if (i < ts.length - 1 || (lastNoise === 'ifPositive' && t > 0)) {
        const z = randn(x.shape, r.gen);
        if (variance === 'learnedRange') {
          const lv = learnedRangeLogVariance(p.v!, [Math.log(beta)], [Math.log(betaTilde)]);
          next = add(next, mul(exp(mul(lv, 0.5)), z));
        } else {
          next = add(next, mul(z, Math.sqrt(variance === 'fixedLarge' ? beta : betaTilde)));
        }
      }
      return inpaintBlend(next, abPrev, 'vp', r);
    });
    yield { step: i + 1, totalSteps: ts.length, t, sigma: sigmaVE(abT), xt: x, x0Pred: p.x0, nfe };
  }
  return x;
}
