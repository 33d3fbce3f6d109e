/**
 * Closed-form denoisers for data whose noised marginals are known exactly, to test samplers without training.
 *
 * Diagonal Gaussian data x_0 ~ N(μ, diag s²): x_t = a x_0 + σ ε (a = √ᾱ, σ = √(1 − ᾱ)) is N(a μ, diag v),
 * v = a² s² + σ², so
 *   ε̂ = E[ε | x_t] = σ (x_t − a μ)/v         x̂_0 = E[x_0 | x_t] = μ + a s² (x_t − a μ)/v
 *   Var[x_0 | x_t] = s² σ²/v                   (the best Σ for DDPM's reverse step; see `learnedVariance`)
 * Mixture Σ_k π_k N(μ_k, diag s_k²): each component noises as above; with responsibilities
 * r_k(x_t) ∝ π_k N(x_t; a μ_k, diag v_k), ε̂ = Σ_k r_k σ (x_t − a μ_k)/v_k and x̂_0 = Σ_k r_k x̂_0^{(k)}.
 *
 * ᾱ at a model timestep t comes from NoiseSchedule.alphaBarAt(t), so the oracle is exact at the real-valued t
 * the σ-samplers use too. Data are [B, D] float32.
 */
import { Generator, Tensor, tensor } from '../../src/tensor/index.js';
import type { Model, NoiseSchedule, PredictionType } from '../../src/diffusion/index.js';

export interface MixtureSpec {
  weights: number[];
  means: number[][];
  stds: number[][];
}

export interface OracleOptions {
  prediction?: PredictionType;
  /**
   * Append the Improved-DDPM variance channel v whose learned-range variance equals the exact reverse-step
   * variance β̃_t + coef1_t² Var[x_0 | x_t] (Gaussian data only; integer t).
   */
  learnedVariance?: boolean;
}

/** A single Gaussian is a one-component mixture. */
export function gaussianSpec(mean: number[], std: number[]): MixtureSpec {
  return { weights: [1], means: [mean], stds: [std] };
}

/** The exact denoiser of a diagonal-Gaussian mixture as a Model. */
export function mixtureOracle(schedule: NoiseSchedule, spec: MixtureSpec, opts: OracleOptions = {}): Model {
  const K = spec.weights.length, D = spec.means[0].length;
  const logPi = spec.weights.map((w) => Math.log(w / spec.weights.reduce((a, b) => a + b, 0)));
  const prediction = opts.prediction ?? 'epsilon';
  if (opts.learnedVariance && K !== 1) throw new Error('mixtureOracle: learnedVariance is implemented for one Gaussian only');
  return (xt: Tensor, t: Tensor) => {
    if (xt.ndim !== 2 || xt.shape[1] !== D) throw new Error(`oracle: x_t must be [B, ${D}], got [${xt.shape.join(', ')}]`);
    const B = xt.shape[0], x = xt.data, td = t.data;
    const outD = opts.learnedVariance ? 2 * D : D;
    const out = new Float32Array(B * outD);
    const logr = new Float64Array(K);
    for (let i = 0; i < B; i++) {
      const ab = schedule.alphaBarAt(td[i]);
      const a = Math.sqrt(ab), s2 = 1 - ab, s = Math.sqrt(s2);
      let mx = -Infinity;
      for (let k = 0; k < K; k++) {
        let l = logPi[k];
        for (let d = 0; d < D; d++) {
          const v = ab * spec.stds[k][d] ** 2 + s2, r = x[i * D + d] - a * spec.means[k][d];
          l -= 0.5 * (Math.log(v) + (r * r) / v);
        }
        logr[k] = l;
        mx = Math.max(mx, l);
      }
      let z = 0;
      for (let k = 0; k < K; k++) { logr[k] = Math.exp(logr[k] - mx); z += logr[k]; }
      for (let d = 0; d < D; d++) {
        let eps = 0, x0 = 0;
        for (let k = 0; k < K; k++) {
          const rk = logr[k] / z, sk2 = spec.stds[k][d] ** 2, v = ab * sk2 + s2, r = x[i * D + d] - a * spec.means[k][d];
          eps += rk * (s * r) / v;
          x0 += rk * (spec.means[k][d] + (a * sk2 * r) / v);
        }
        out[i * outD + d] = prediction === 'epsilon' ? eps : prediction === 'x0' ? x0 : a * eps - s * x0;
        if (opts.learnedVariance) {
          const ti = td[i];
          if (!Number.isInteger(ti)) throw new Error(`oracle: learned variance needs integer t, got ${ti}`);
          const sk2 = spec.stds[0][d] ** 2;
          const post = (sk2 * s2) / (ab * sk2 + s2);
          const want = schedule.posteriorVariance[ti] + schedule.posteriorMeanCoef1[ti] ** 2 * post;
          const lo = schedule.posteriorLogVarianceClipped[ti], hi = Math.log(schedule.betas[ti]);
          out[i * outD + D + d] = (2 * (Math.log(want) - lo)) / (hi - lo) - 1;
        }
      }
    }
    return tensor(out, [B, outD]);
  };
}

export function gaussianOracle(schedule: NoiseSchedule, mean: number[], std: number[], opts: OracleOptions = {}): Model {
  return mixtureOracle(schedule, gaussianSpec(mean, std), opts);
}

/** n samples of the mixture, [n, D]. */
export function sampleMixture(spec: MixtureSpec, n: number, gen: Generator): Tensor {
  const D = spec.means[0].length, total = spec.weights.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    let u = gen.uniform() * total, k = 0;
    while (k < spec.weights.length - 1 && u > spec.weights[k]) { u -= spec.weights[k]; k++; }
    for (let d = 0; d < D; d++) out[i * D + d] = spec.means[k][d] + spec.stds[k][d] * gen.normal();
  }
  return tensor(out, [n, D]);
}

/** The most likely component of each sample under the clean mixture. */
export function assignComponents(spec: MixtureSpec, x: Tensor): Int32Array {
  const D = spec.means[0].length, B = x.shape[0], out = new Int32Array(B);
  for (let i = 0; i < B; i++) {
    let best = -Infinity;
    for (let k = 0; k < spec.weights.length; k++) {
      let l = Math.log(spec.weights[k]);
      for (let d = 0; d < D; d++) {
        const s = spec.stds[k][d], r = x.data[i * D + d] - spec.means[k][d];
        l -= Math.log(s) + (r * r) / (2 * s * s);
      }
      if (l > best) { best = l; out[i] = k; }
    }
  }
  return out;
}

/** Fraction of samples per component. */
export function componentWeights(spec: MixtureSpec, x: Tensor): number[] {
  const c = assignComponents(spec, x), w = new Array<number>(spec.weights.length).fill(0);
  for (const k of c) w[k] += 1 / c.length;
  return w;
}

/** Per-dimension mean and std of [B, D] samples (optionally of those in component k only). */
export function moments(x: Tensor, rows?: (i: number) => boolean): { mean: number[]; std: number[]; n: number } {
  const B = x.shape[0], D = x.shape[1], m = new Array<number>(D).fill(0), q = new Array<number>(D).fill(0);
  let n = 0;
  for (let i = 0; i < B; i++) {
    if (rows && !rows(i)) continue;
    n++;
    for (let d = 0; d < D; d++) m[d] += x.data[i * D + d];
  }
  for (let d = 0; d < D; d++) m[d] /= n;
  for (let i = 0; i < B; i++) {
    if (rows && !rows(i)) continue;
    for (let d = 0; d < D; d++) q[d] += (x.data[i * D + d] - m[d]) ** 2;
  }
  return { mean: m, std: q.map((v) => Math.sqrt(v / (n - 1))), n };
}

/**
 * The exact probability-flow ODE map for Gaussian data: the standardized value (x_t − a μ)/√v is constant along
 * a trajectory, so the x_T = noise started at level ᾱ_start ends at μ + s (noise − a μ)/√v.
 */
export function gaussianFlowMap(noise: Tensor, alphaBarStart: number, mean: number[], std: number[]): Tensor {
  const D = mean.length, a = Math.sqrt(alphaBarStart), out = new Float32Array(noise.size);
  for (let i = 0; i < noise.size; i++) {
    const d = i % D, v = alphaBarStart * std[d] ** 2 + 1 - alphaBarStart;
    out[i] = mean[d] + (std[d] * (noise.data[i] - a * mean[d])) / Math.sqrt(v);
  }
  return tensor(out, noise.shape);
}

/** Root-mean-square difference of two same-shape tensors. */
export function rms(a: Tensor, b: Tensor): number {
  let s = 0;
  for (let i = 0; i < a.size; i++) s += (a.data[i] - b.data[i]) ** 2;
  return Math.sqrt(s / a.size);
}
