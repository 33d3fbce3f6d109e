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
import { DEFAULT_STEPS } from './defaults.js';

/** The multistep settings (diffusers' DPMSolverMultistepScheduler names in brackets). */
export interface MultistepOptions {
  /** Solver order 1, 2 or 3 (default 2) [solver_order]. */
  order?: 1 | 2 | 3;
  /** The second-order correction: 'midpoint' (default, k-diffusion's and the paper's 2M) or 'heun' [solver_type]. */
  solverType?: 'midpoint' | 'heun';
  /** Below 15 steps, lower the order on the last two steps (default true) [lower_order_final]. */
  lowerOrderFinal?: boolean;
}

/**
 * One step of DPM-Solver++ in the VE scale, order k ∈ {1, 2, 3}, from x at σ_s to σ_t given the data predictions
 * Ds = [D_s0, D_s1, D_s2] (newest first) at hs = [h, h_0, h_1] (h_j the earlier λ steps):
 *   1: x_t = (σ_t/σ_s) x − (e^{−h} − 1) D0
 *   2: … − ½ (e^{−h} − 1) D1 (midpoint) or + ((e^{−h} − 1)/h + 1) D1 (heun), D1 = (D0 − D_s1)/r0, r0 = h_0/h
 *   3: … + ((e^{−h} − 1)/h + 1) D1' − ((e^{−h} − 1 + h)/h² − ½) D2 (Lu et al. 2022, Alg. 2 and §B)
 */
function multistepUpdate(k: number, x: Tensor, sigma: number, sigmaNext: number, Ds: Tensor[], hs: number[], solverType: 'midpoint' | 'heun'): Tensor {
  if (sigmaNext === 0) return Ds[0]; // λ = ∞: every order reduces to the data prediction
  const h = Math.log(sigma) - Math.log(sigmaNext), em1 = Math.expm1(-h); // e^{−h} − 1
  let y = add(mul(x, sigmaNext / sigma), mul(Ds[0], -em1));
  if (k === 2) {
    const r0 = hs[1] / h, D1 = mul(sub(Ds[0], Ds[1]), 1 / r0);
    y = add(y, mul(D1, solverType === 'midpoint' ? -0.5 * em1 : em1 / h + 1));
  } else if (k === 3) {
    const r0 = hs[1] / h, r1 = hs[2] / h;
    const D10 = mul(sub(Ds[0], Ds[1]), 1 / r0), D11 = mul(sub(Ds[1], Ds[2]), 1 / r1);
    const D1 = add(D10, mul(sub(D10, D11), r0 / (r0 + r1))), D2 = mul(sub(D10, D11), 1 / (r0 + r1));
    y = add(y, add(mul(D1, em1 / h + 1), mul(D2, -((em1 + h) / (h * h) - 0.5))));
  }
  return y;
}

function* dpmpp(fn: string, denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks, sde: boolean, eta: number,
  ms: MultistepOptions = {}): Generator<SigmaStep, Tensor, void> {
  checkSigmas(fn, sigmas);
  if (!(eta >= 0 && Number.isFinite(eta))) rangeFail(fn, `eta must be a finite number ≥ 0, got ${eta}`);
  const order = ms.order ?? 2, solverType = ms.solverType ?? 'midpoint', lowerOrderFinal = ms.lowerOrderFinal ?? true;
  if (order !== 1 && order !== 2 && order !== 3) rangeFail(fn, `order must be 1, 2 or 3, got ${JSON.stringify(order)}`);
  if (solverType !== 'midpoint' && solverType !== 'heun') rangeFail(fn, `solverType must be 'midpoint' or 'heun', got ${JSON.stringify(solverType)}`);
  if (sde && (order !== 2 || solverType !== 'midpoint')) rangeFail(fn, 'the SDE variant is second order with the midpoint correction only');
  if (!sde) eta = 0;
  const n = sigmas.length - 1;
  const Ds: Tensor[] = [], hs: number[] = [];
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const D = denoiser(x, sigma);
    Ds.unshift(D);
    if (Ds.length > 3) Ds.pop();
    const h = sigmaNext > 0 ? Math.log(sigma) - Math.log(sigmaNext) : Infinity;
    hs.unshift(h);
    if (hs.length > 3) hs.pop();
    let next: Tensor;
    if (sde) {
      if (sigmaNext === 0) {
        next = D;
      } else {
        const c = -Math.expm1(-(1 + eta) * h); // 1 − e^{−(1+η)h}
        const prevD = Ds[1], hLast = hs[1];
        next = noGrad(() => {
          let y = add(mul(x, (sigmaNext / sigma) * Math.exp(-eta * h)), mul(D, c));
          if (prevD) y = add(y, mul(sub(D, prevD), (0.5 * c * h) / hLast));
          if (eta > 0) y = add(y, mul(randn(x.shape, hooks.gen), sigmaNext * Math.sqrt(-Math.expm1(-2 * eta * h))));
          return y;
        });
      }
    } else {
      // diffusers' order schedule: warm up from first order; below 15 steps drop to first (second) order on the
      // last (second-to-last) step; the step to σ = 0 is always first order.
      const lof = i === n - 1 && ((lowerOrderFinal && n < 15) || sigmaNext === 0);
      const los = i === n - 2 && lowerOrderFinal && n < 15;
      const k = order === 1 || i < 1 || lof ? 1 : order === 2 || i < 2 || los ? 2 : 3;
      next = noGrad(() => multistepUpdate(k, x, sigma, sigmaNext, Ds, hs, solverType));
    }
    x = hooks.afterStep ? hooks.afterStep(next, sigmaNext) : next;
    yield { i, sigma, sigmaNext, x, denoised: D, nfe: i + 1 };
  }
  return x;
}

/** DPM-Solver++(2M), a pure function of the denoiser (k-diffusion's sample_dpmpp_2m). */
export function sampleDpmPp2M(denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks = {}) {
  return dpmpp('sampleDpmPp2M', denoiser, x, sigmas, hooks, false, 0);
}

/** SDE-DPM-Solver++(2M) with the midpoint correction (k-diffusion's sample_dpmpp_2m_sde); η = 1 by default. */
export function sampleDpmPp2MSde(denoiser: Denoiser, x: Tensor, sigmas: readonly number[], hooks: SigmaSamplerHooks = {}, eta = 1) {
  return dpmpp('sampleDpmPp2MSde', denoiser, x, sigmas, hooks, true, eta);
}

export interface DpmSolverOptions extends SigmaRunOptions, MultistepOptions {
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
  return runSigmaSampler(fn, (d, x, s, h) => dpmpp(fn, d, x, s, h, opts.sde ?? false, opts.eta ?? 1, opts), model, schedule, noise, { ...opts, spacing: opts.spacing ?? 'logSnrUniform' }, DEFAULT_STEPS.dpmSolverPlusPlus(schedule.T));
}
