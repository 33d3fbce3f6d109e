/**
 * DDIM: Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12 (generalized sampling step) and
 * eq. 16 (σ_t(η)); §4.3 and eq. 14 for the deterministic (η = 0) ODE that makes inversion x_0 → x_T possible.
 *
 * Notation, from timestep t to the next p (ᾱ_p = 1 after the last step):
 *   abT, abPrev  ᾱ_t (α_t in the paper), ᾱ_p (α_{t−1})
 *   x0, eps      f_θ(x_t) = x̂_0, ε_θ(x_t)
 *   sigma        σ_t(η) = η √((1 − ᾱ_p)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_p)
 *   x_p = √ᾱ_p x̂_0 + √(1 − ᾱ_p − σ²) ε̂ + σ z
 * η = 0 is DDIM, η = 1 is DDPM ancestral sampling with σ² = β̃ on the chosen subsequence.
 */
import { Generator, Tensor, add, mul, noGrad, randn } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { rangeFail } from '../util.js';
import {
  type Model, type SampleOptions, type SamplerEvent, type SamplerRun, type Spacing, inpaintBlend, predict,
  resolveOptions, sigmaVE, spacedTimesteps, discreteStart,
} from './common.js';
import { DEFAULT_STEPS } from './defaults.js';

export interface DdimOptions extends SampleOptions {
  /** Number of steps (default 50). */
  steps?: number;
  /** Stochasticity η ≥ 0 (default 0: deterministic). */
  eta?: number;
  /** Which timesteps (default 'trailing': the first step is at T−1, where x_T ~ N(0, I) really lives). */
  spacing?: Spacing;
  /** Added to leading-spacing timesteps (diffusers' steps_offset; Stable Diffusion's 1 gives 981 … 1). */
  stepsOffset?: number;
  /** Explicit model timesteps, strictly decreasing (instead of steps and spacing). */
  timesteps?: number[];
  /**
   * Where each step lands: 'next' (default) the next listed timestep; 'stride' t − ⌊T/N⌋, as diffusers'
   * DDIMScheduler does (the two differ when the spacing is not a multiple of ⌊T/N⌋, e.g. linspace or trailing).
   */
  prevTimestep?: 'next' | 'stride';
  /** ᾱ after the last step (default 1, the data; diffusers' set_alpha_to_one = false uses ᾱ_0). */
  finalAlphaCumprod?: number;
  /**
   * With `clip`: 'recompute' (default) derives ε from the clipped x̂_0 (GLIDE); 'model' keeps the model's own ε, as
   * diffusers' DDIMScheduler does by default (use_clipped_model_output = false).
   */
  clipEps?: 'recompute' | 'model';
}

/** DDIM sampler from x_T = noise ~ N(0, I). */
export function* ddim(model: Model, schedule: NoiseSchedule, noise: Tensor, opts: DdimOptions = {}): SamplerRun {
  const fn = 'ddim';
  const r = resolveOptions(fn, noise, opts);
  const eta = opts.eta ?? 0;
  if (!(eta >= 0 && Number.isFinite(eta))) rangeFail(fn, `eta must be a finite number ≥ 0, got ${eta}`);
  const start = discreteStart(fn, schedule, noise, r, opts.steps ?? DEFAULT_STEPS.ddim(schedule.T), opts.spacing ?? 'trailing',
    { timesteps: opts.timesteps, offset: opts.stepsOffset });
  const { ts } = start;
  const finalAb = opts.finalAlphaCumprod ?? 1;
  if (!(finalAb > 0 && finalAb <= 1)) rangeFail(fn, `finalAlphaCumprod must be in (0, 1], got ${finalAb}`);
  const prevMode = opts.prevTimestep ?? 'next', clipEps = opts.clipEps ?? 'recompute';
  if (prevMode !== 'next' && prevMode !== 'stride') rangeFail(fn, `prevTimestep must be 'next' or 'stride', got ${JSON.stringify(prevMode)}`);
  if (clipEps !== 'recompute' && clipEps !== 'model') rangeFail(fn, `clipEps must be 'recompute' or 'model', got ${JSON.stringify(clipEps)}`);
  // The stride is ⌊T/N⌋ for the full run (image-to-image cuts the list, not the stride).
  const stride = Math.floor(schedule.T / (opts.timesteps?.length ?? opts.steps ?? DEFAULT_STEPS.ddim(schedule.T)));
  const abOf = (t: number) => (t >= 0 ? schedule.alphasCumprod[t] : finalAb);
  const ab = (i: number) => (i < ts.length ? schedule.alphasCumprod[ts[i]] : finalAb);
  const abNext = (i: number) => (prevMode === 'stride' ? abOf(ts[i] - stride) : ab(i + 1));
  let x = start.x;
  for (let i = 0; i < ts.length; i++) {
    const abT = ab(i), abPrev = abNext(i);
    const p = predict(fn, model, x, ts[i], abT, r, r.learnedVariance, clipEps === 'model');
    x = noGrad(() => {
      const sigma = eta * Math.sqrt((1 - abPrev) / (1 - abT)) * Math.sqrt(1 - abT / abPrev);
      let next = add(mul(p.x0, Math.sqrt(abPrev)), mul(p.eps, Math.sqrt(Math.max(1 - abPrev - sigma * sigma, 0))));
      // Drawn whenever η > 0, even where σ is 0 (the last step), so the noise stream matches diffusers'.
      if (eta > 0) next = add(next, mul(randn(x.shape, r.gen), sigma));
      return inpaintBlend(next, abPrev, 'vp', r);
    });
    yield { step: i + 1, totalSteps: ts.length, t: ts[i], sigma: sigmaVE(abT), xt: x, x0Pred: p.x0, nfe: i + 1 };
  }
  return x;
}

export interface DdimInversionOptions {
  steps?: number;
  spacing?: Spacing;
  prediction?: SampleOptions['prediction'];
  learnedVariance?: boolean;
  cond?: Tensor;
  gen?: Generator;
}

/**
 * Deterministic DDIM inversion x_0 → x_T (η = 0 run backwards, Song et al. 2021 §4.3 / eq. 14): the same grid as
 * `ddim` walked upwards, x_{next} = √ᾱ_next x̂_0 + √(1 − ᾱ_next) ε̂ with ε̂ taken at the current level (at the
 * data level, where the model is not defined, at the first grid timestep). `ddim` with the same steps and
 * spacing maps the result back to x_0, up to the discretization error. Events report the latent as it rises;
 * their x0Pred is the model's x̂_0 at that step.
 */
export function* ddimInvert(model: Model, schedule: NoiseSchedule, x0: Tensor, opts: DdimInversionOptions = {}): SamplerRun {
  const fn = 'ddimInvert';
  const r = resolveOptions(fn, x0, opts);
  const ts = spacedTimesteps(fn, schedule.T, opts.steps ?? DEFAULT_STEPS.ddim(schedule.T), opts.spacing ?? 'trailing').reverse();
  let x = x0;
  for (let i = 0; i < ts.length; i++) {
    const tEval = i === 0 ? ts[0] : ts[i - 1];
    const abNext = schedule.alphasCumprod[ts[i]];
    // At the data level x_0 is known exactly; ε̂ comes from the model at the first timestep.
    const p = predict(fn, model, x, tEval, schedule.alphasCumprod[tEval], r);
    const x0Hat = i === 0 ? x0 : p.x0;
    x = noGrad(() => add(mul(x0Hat, Math.sqrt(abNext)), mul(p.eps, Math.sqrt(1 - abNext))));
    yield { step: i + 1, totalSteps: ts.length, t: tEval, sigma: sigmaVE(schedule.alphasCumprod[tEval]), xt: x, x0Pred: p.x0, nfe: i + 1 } satisfies SamplerEvent;
  }
  return x;
}
