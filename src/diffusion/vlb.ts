/**
 * The variational bound in bits per dimension (Ho et al. 2020, eq. 5; Nichol & Dhariwal 2021, §2 and §3.1):
 *
 *   L_vlb = L_T + Σ_{t≥1} L_{t−1} + L_0
 *   L_T     = KL(q(x_T | x_0) ‖ N(0, I))                                   priorBpd
 *   L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))               vlbTerm, t ≥ 1 (index)
 *   L_0     = −log p_θ(x_0 | x_1), a Gaussian discretized to the 256 bins of 8-bit data scaled to [−1, 1]
 *             (Ho et al. 2020, eq. 13)                                      vlbTerm at index 0
 *
 * Per-sample values are means over the non-batch dimensions, in bits (nats / ln 2).
 */
import { Generator, Tensor, add, clamp, tensor as tensorOf, defaultGenerator, exp, log, mean, mul, noGrad, reshape, sub, tanh, where, lt, gt } from '../tensor/index.js';
import { qPosteriorMeanVariance, qSample } from './forward.js';
import type { NoiseSchedule } from './schedules.js';
import { type ReverseOptions, pMeanVariance } from './reverse.js';
import type { Model } from './samplers/common.js';
import { type TimeLike, batchOf, checkSameShape, coefTensor, fail, timesteps } from './util.js';

const LN2 = Math.LN2;

/** KL(N(μ₁, e^{lv₁}) ‖ N(μ₂, e^{lv₂})) elementwise, in nats (tensors broadcast). */
export function normalKl(mean1: Tensor, logVar1: Tensor, mean2: Tensor, logVar2: Tensor): Tensor {
  const d = sub(mean1, mean2);
  // ½(−1 + lv₂ − lv₁ + e^{lv₁−lv₂} + (μ₁−μ₂)² e^{−lv₂})
  return mul(add(add(sub(logVar2, logVar1), exp(sub(logVar1, logVar2))), sub(mul(mul(d, d), exp(mul(logVar2, -1))), 1)), 0.5);
}

/** Φ(x) ≈ ½(1 + tanh(√(2/π)(x + 0.044715 x³))) (the engine has no erf; the approximation DDPM's decoder uses). */
export function approxStandardNormalCdf(x: Tensor): Tensor {
  const c = Math.sqrt(2 / Math.PI);
  return mul(add(tanh(mul(add(x, mul(mul(mul(x, x), x), 0.044715)), c)), 1), 0.5);
}

/**
 * log-likelihood of x (8-bit data scaled to [−1, 1]) under N(means, e^{2 logScales}) discretized to bins of
 * width 2/255; the edge bins extend to ±∞. Elementwise, in nats.
 */
export function discretizedGaussianLogLikelihood(x: Tensor, means: Tensor, logScales: Tensor): Tensor {
  checkSameShape('discretizedGaussianLogLikelihood', 'x', x, 'means', means);
  const centered = sub(x, means);
  const invStd = exp(mul(logScales, -1));
  const cdfPlus = approxStandardNormalCdf(mul(add(centered, 1 / 255), invStd));
  const cdfMin = approxStandardNormalCdf(mul(sub(centered, 1 / 255), invStd));
  const logCdfPlus = log(clamp(cdfPlus, 1e-12));
  const logOneMinusCdfMin = log(clamp(sub(1, cdfMin), 1e-12));
  const logDelta = log(clamp(sub(cdfPlus, cdfMin), 1e-12));
  return where(lt(x, -0.999), logCdfPlus, where(gt(x, 0.999), logOneMinusCdfMin, logDelta));
}

/** Mean over all axes but the first: [B, …] → [B]. */
export function meanFlat(x: Tensor): Tensor {
  return mean(reshape(x, [x.shape[0], -1]), 1);
}

/** L_T in bits/dim per sample: KL(q(x_T | x_0) ‖ N(0, I)) at the last timestep. */
export function priorBpd(schedule: NoiseSchedule, x0: Tensor): Tensor {
  const b = batchOf('priorBpd', x0), T = schedule.T;
  const ab = schedule.alphasCumprod[T - 1];
  const m = mul(x0, Math.sqrt(ab));
  const lv = coefTensor(new Float64Array(b).fill(Math.log(1 - ab)), x0);
  return mul(meanFlat(normalKl(m, lv, mul(m, 0), coefTensor(new Float64Array(b), x0))), 1 / LN2);
}

/**
 * One term of the bound per sample, in bits/dim: L_{t−1} for t ≥ 1, the decoder NLL L_0 for t = 0, with p_θ formed
 * from `modelOutput` at (x_t, t). Differentiable in the model output (the hybrid loss uses it).
 */
export function vlbTerm(schedule: NoiseSchedule, modelOutput: Tensor, x0: Tensor, xt: Tensor, t: TimeLike, opts: ReverseOptions = {}): Tensor {
  checkSameShape('vlbTerm', 'x_0', x0, 'x_t', xt);
  const ts = timesteps('vlbTerm', schedule, t, batchOf('vlbTerm', xt));
  const q = qPosteriorMeanVariance(schedule, x0, xt, ts);
  const p = pMeanVariance(schedule, modelOutput, xt, ts, opts);
  const kl = mul(meanFlat(normalKl(q.mean, coefTensor(q.logVarianceClipped, xt), p.mean, p.logVariance)), 1 / LN2);
  if (!ts.some((u) => u === 0)) return kl;
  // The decoder: N(μ_θ, Σ_θ) at t = 0, log-scale ½ log Σ_θ (broadcasts against x_0).
  const nll = mul(meanFlat(discretizedGaussianLogLikelihood(x0, p.mean, mul(p.logVariance, 0.5))), -1 / LN2);
  if (ts.every((u) => u === 0)) return nll;
  return where(tensorOf(ts.map((u) => (u === 0 ? 1 : 0))), nll, kl);
}

export interface BpdOptions extends ReverseOptions {
  cond?: Tensor;
  gen?: Generator;
}

export interface BpdResult {
  /** Total bound per sample, bits/dim. */
  total: Float64Array;
  /** Its mean over the batch. */
  mean: number;
  /** L_T per sample. */
  prior: Float64Array;
  /** Batch-mean term at each index t (terms[0] = L_0, the decoder NLL). */
  terms: Float64Array;
}

/**
 * The full bound in bits/dim, one pass over every timestep (improved-diffusion's calc_bpd_loop): T model
 * evaluations, each at a fresh x_t ~ q(x_t | x_0). For 8-bit data scaled to [−1, 1].
 */
export function bitsPerDim(model: Model, schedule: NoiseSchedule, x0: Tensor, opts: BpdOptions = {}): BpdResult {
  const b = batchOf('bitsPerDim', x0);
  const d = x0.data;
  for (let i = 0; i < d.length; i++) if (!(d[i] >= -1 && d[i] <= 1)) fail('bitsPerDim', `x_0 must lie in [-1, 1] (8-bit data scaled), found ${d[i]}`);
  const gen = opts.gen ?? defaultGenerator;
  return noGrad(() => {
    const total = new Float64Array(b), terms = new Float64Array(schedule.T);
    for (let t = schedule.T - 1; t >= 0; t--) {
      const xt = qSample(schedule, x0, t, undefined, gen);
      const tt = new Tensor(new Float32Array(b).fill(t), [b]);
      const term = vlbTerm(schedule, model(xt, tt, opts.cond), x0, xt, t, opts).data;
      let s = 0;
      for (let i = 0; i < b; i++) { total[i] += term[i]; s += term[i]; }
      terms[t] = s / b;
    }
    const prior = Float64Array.from(priorBpd(schedule, x0).data);
    for (let i = 0; i < b; i++) total[i] += prior[i];
    return { total, mean: total.reduce((a, v) => a + v, 0) / b, prior, terms };
  });
}
