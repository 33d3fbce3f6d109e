/**
 * DPM-Solver++(2M) and its SDE variant: Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
 * Diffusion Probabilistic Models", Algorithm 2 (multistep second order, data prediction) and §5 / Appendix
 * (SDE-DPM-Solver++). Written in the VE scale of k-diffusion, where α = 1 and λ = −log σ.
 *
 * Notation, step i from σ_i = sigma to σ_{i+1} = sigmaNext:
 *   lambda     λ = −log σ  (half the log-SNR)
 *   h          h_i = λ_{i+1} − λ_i;  r = h_{i−1}/h_i
 *   D, Dold    x_θ at this step and the previous one (data predictions)
 *   ODE:  x_{i+1} = (σ_{i+1}/σ_i) x_i + (1 − e^{−h}) D̃,  D̃ = (1 + 1/(2r)) D − (1/(2r)) D_old   (first step: D̃ = D)
 *   SDE (η, default 1):
 *         x_{i+1} = (σ_{i+1}/σ_i) e^{−ηh} x_i + (1 − e^{−(1+η)h}) D + ½ (1 − e^{−(1+η)h}) (D − D_old)/r
 *                   + σ_{i+1} √(1 − e^{−2ηh}) z
 *   The last step (σ_{i+1} = 0) returns D: a first-order step to λ = ∞.
 * η = 0 in the SDE form gives the ODE form exactly. One model evaluation per step.
 */
import { Tensor, add, mul, noGrad, randn, sub } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { rangeFail } from '../util.js';
import type { Model, SamplerRun } from './common.js';
import { type Denoiser, type SigmaRunOptions, type SigmaSamplerHooks, type SigmaStep, checkSigmas, runSigmaSampler } from './denoiser.js';

function* dpmpp2m(fn: string, denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks, sde: boolean, eta: number):
  Generator<SigmaStep, Tensor, void> {
  checkSigmas(fn, sigmas);
  if (!(eta >= 0 && Number.isFinite(eta))) rangeFail(fn, `eta must be a finite number ≥ 0, got ${eta}`);
  if (!sde) eta = 0;
  const n = sigmas.length - 1;
  let old: Tensor | null = null, hLast = 0;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const D = denoiser(x, sigma);
    let next: Tensor;
    if (sigmaNext === 0) {
      next = D;
    } else {
      const h = Math.log(sigma) - Math.log(sigmaNext);
      const c = -Math.expm1(-(1 + eta) * h); // 1 − e^{−(1+η)h}
      const prevD = old;
      next = noGrad(() => {
        let y = add(mul(x, (sigmaNext / sigma) * Math.exp(-eta * h)), mul(D, c));
        if (prevD) y = add(y, mul(sub(D, prevD), (0.5 * c * h) / hLast));
        if (eta > 0) y = add(y, mul(randn(x.shape, hooks.gen), sigmaNext * Math.sqrt(-Math.expm1(-2 * eta * h))));
        return y;
      });
      hLast = h;
    }
    old = D;
    x = hooks.afterStep ? hooks.afterStep(next, sigmaNext) : next;
    yield { i, sigma, sigmaNext, x, denoised: D, nfe: i + 1 };
  }
  return x;
}

/** DPM-Solver++(2M), a pure function of the denoiser (k-diffusion's sample_dpmpp_2m). */
export function sampleDpmPp2M(denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks = {}) {
  return dpmpp2m('sampleDpmPp2M', denoiser, x, sigmas, hooks, false, 0);
}

/** SDE-DPM-Solver++(2M) with the midpoint correction (k-diffusion's sample_dpmpp_2m_sde); η = 1 by default. */
export function sampleDpmPp2MSde(denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks = {}, eta = 1) {
  return dpmpp2m('sampleDpmPp2MSde', denoiser, x, sigmas, hooks, true, eta);
}

export interface DpmSolverOptions extends SigmaRunOptions {
  /** The SDE variant (default false). */
  sde?: boolean;
  /** SDE noise scale η (default 1). */
  eta?: number;
}

/**
 * DPM-Solver++(2M) for a discrete-time model: default 20 steps uniform in log-SNR (λ), the paper's grid for
 * discrete-time models; `spacing: 'karras'` for Karras σ's, 'timeUniform' for evenly spaced timesteps.
 */
export function dpmSolverPlusPlus(model: Model, schedule: NoiseSchedule, noise: Tensor, opts: DpmSolverOptions = {}): SamplerRun {
  const fn = opts.sde ? 'dpmSolverPlusPlus(sde)' : 'dpmSolverPlusPlus';
  return runSigmaSampler(fn, (d, x, s, h) => dpmpp2m(fn, d, x, s, h, opts.sde ?? false, opts.eta ?? 1), model, schedule, noise, { ...opts, spacing: opts.spacing ?? 'logSnrUniform' }, 20);
}
