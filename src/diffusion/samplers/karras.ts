/**
 * Euler and Heun samplers of the probability-flow ODE dx/dσ = (x − D(x; σ))/σ on Karras σ's: Karras et al. 2022,
 * "Elucidating the Design Space of Diffusion-Based Generative Models", Algorithm 1 (deterministic Heun) and
 * Algorithm 2 (optional "churn": add noise to raise σ to σ̂ = σ(1 + γ) before the step).
 *
 * Notation:
 *   sigma, sigmaNext   σ_i, σ_{i+1} (σ_N = 0)
 *   sigmaHat, gamma    σ̂_i = σ_i (1 + γ_i), γ_i = min(S_churn/N, √2 − 1) inside [S_tmin, S_tmax], else 0
 *   d, d2              d_i = (x̂_i − D(x̂_i; σ̂_i))/σ̂_i, d'_i at the Euler prediction (Heun's corrector)
 * Heun takes 2 evaluations per step except the last (σ_{i+1} = 0), where it is an Euler step: 2N − 1 in all.
 */
import { Tensor, add, mul, noGrad, randn, sub } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { rangeFail } from '../util.js';
import type { Model, SamplerRun } from './common.js';
import { type Denoiser, type SigmaRunOptions, type SigmaSamplerHooks, type SigmaStep, checkSigmas, runSigmaSampler } from './denoiser.js';
import { DEFAULT_STEPS } from './defaults.js';

export interface ChurnOptions {
  /** S_churn (default 0: deterministic). */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  /** S_noise (default 1). */
  sNoise?: number;
}

function* eulerOrHeun(fn: string, heun: boolean, denoiser: Denoiser, x: Tensor, sigmas: readonly number[],
  hooks: SigmaSamplerHooks & ChurnOptions): Generator<SigmaStep, Tensor, void> {
  checkSigmas(fn, sigmas);
  const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = hooks;
  if (!(sChurn >= 0) || !(sNoise >= 0)) rangeFail(fn, `sChurn and sNoise must be ≥ 0, got ${sChurn}, ${sNoise}`);
  const n = sigmas.length - 1;
  let nfe = 0;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const gamma = sigma >= sTmin && sigma <= sTmax ? Math.min(sChurn / n, Math.SQRT2 - 1) : 0;
    const sigmaHat = sigma * (1 + gamma);
    const xHat = gamma > 0 ? noGrad(() => add(x, mul(randn(x.shape, hooks.gen), sNoise * Math.sqrt(sigmaHat ** 2 - sigma ** 2)))) : x;
    const denoised = denoiser(xHat, sigmaHat);
    nfe++;
    const d = noGrad(() => mul(sub(xHat, denoised), 1 / sigmaHat));
    const dt = sigmaNext - sigmaHat;
    let next = noGrad(() => add(xHat, mul(d, dt)));
    if (heun && sigmaNext > 0) {
      const denoised2 = denoiser(next, sigmaNext);
      nfe++;
      next = noGrad(() => {
        const d2 = mul(sub(next, denoised2), 1 / sigmaNext);
        return add(xHat, mul(add(d, d2), dt / 2));
      });
    }
    x = hooks.afterStep ? hooks.afterStep(next, sigmaNext) : next;
    yield { i, sigma, sigmaNext, x, denoised, nfe };
  }
  return x;
}

/** Euler (first order) on the probability-flow ODE, a pure function of the denoiser (k-diffusion's sample_euler). */
export function sampleEuler(denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks & ChurnOptions = {}) {
  return eulerOrHeun('sampleEuler', false, denoiser, x, sigmas, hooks);
}

/** Heun (second order), EDM Algorithm 1/2 (k-diffusion's sample_heun). */
export function sampleHeun(denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks & ChurnOptions = {}) {
  return eulerOrHeun('sampleHeun', true, denoiser, x, sigmas, hooks);
}

export interface KarrasSamplerOptions extends SigmaRunOptions, ChurnOptions {}

/** Euler on Karras σ's for a discrete-time model (default 50 steps). */
export function euler(model: Model, schedule: NoiseSchedule, noise: Tensor, opts: KarrasSamplerOptions = {}): SamplerRun {
  return runSigmaSampler('euler', (d, x, s, h) => eulerOrHeun('euler', false, d, x, s, { ...opts, ...h }), model, schedule, noise, opts, DEFAULT_STEPS.euler(schedule.T));
}

/** Heun on Karras σ's for a discrete-time model (default 18 steps = 35 model evaluations, EDM's CIFAR-10 setting). */
export function heun(model: Model, schedule: NoiseSchedule, noise: Tensor, opts: KarrasSamplerOptions = {}): SamplerRun {
  return runSigmaSampler('heun', (d, x, s, h) => eulerOrHeun('heun', true, d, x, s, { ...opts, ...h }), model, schedule, noise, opts, DEFAULT_STEPS.heun(schedule.T));
}

