/**
 * Training objectives.
 *
 *   L_simple = E_{t, x_0, ε} ‖target − f_θ(x_t, t)‖²   (Ho et al. 2020, eq. 14; t uniform in {0, …, T−1})
 *     target: ε ('epsilon', the default), x_0 ('x0') or v = √ᾱ ε − σ x_0 ('v', Salimans & Ho 2022)
 *   min-SNR-γ weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy", §3.4):
 *     the x_0-space weight min(SNR_t, γ) expressed for each target: ε → min(SNR, γ)/SNR, x_0 → min(SNR, γ),
 *     v → min(SNR, γ)/(SNR + 1)
 *   L_hybrid = L_simple + λ L_vlb (Nichol & Dhariwal 2021, §3.1, λ = 0.001) for a learned variance ('learnedRange'):
 *     L_vlb is estimated by T · L_t at the sampled t (an unbiased estimate of Σ_t L_t); in L_t the mean comes from
 *     the detached prediction (stop-gradient), so L_vlb trains only the variance and L_simple the mean.
 *
 * `mse` is the per-sample mean over dimensions, as improved-diffusion's mean_flat; `vb` is in bits/dim.
 */
import { Generator, Tensor, add, concat, defaultGenerator, mean, mul, randn, sub } from '../tensor/index.js';
import { type PredictionType, checkPrediction, vFromEpsX0 } from './parameterization.js';
import { type VarianceType, checkVariance, splitModelOutput } from './reverse.js';
import type { NoiseSchedule } from './schedules.js';
import type { Model } from './samplers/common.js';
import { meanFlat, vlbTerm } from './vlb.js';
import { type TimeLike, axpby, batchOf, checkSameShape, coefTensor, fail, gather, rangeFail, timesteps } from './util.js';

export type LossWeighting = { kind: 'none' } | { kind: 'minSnr'; gamma?: number };

export interface TrainingLossOptions {
  /** What the model predicts, hence the regression target (default 'epsilon'). */
  prediction?: PredictionType;
  /** 'learnedRange' adds the λ L_vlb term and expects the variance channels (default 'fixedLarge': no vlb term). */
  variance?: VarianceType;
  /** Per-timestep weighting of the MSE (default none). */
  weighting?: LossWeighting;
  /** λ of the hybrid loss (default 0.001). */
  lambdaVlb?: number;
  cond?: Tensor;
  gen?: Generator;
  /** Fixed timesteps instead of uniform draws (tests, importance sampling). */
  t?: TimeLike;
  /** Fixed noise ε instead of a draw. */
  noise?: Tensor;
}

export interface TrainingLoss {
  /** The scalar to call backward() on. */
  loss: Tensor;
  /** Per-sample MSE [B] (unweighted). */
  mse: Tensor;
  /** Per-sample L_t in bits/dim [B] with the mean detached, when the variance is learned. */
  vb: Tensor | null;
  /** The timesteps used. */
  t: Float64Array;
}

/** min-SNR-γ weights for a prediction type, one per SNR. */
export function minSnrWeights(snr: ArrayLike<number>, gamma: number, prediction: PredictionType): Float64Array {
  if (!(gamma > 0)) rangeFail('minSnrWeights', `gamma must be positive, got ${gamma}`);
  return Float64Array.from(snr, (s) => {
    const m = Math.min(s, gamma);
    if (prediction === 'x0') return m;
    if (prediction === 'v') return m / (s + 1);
    return s === 0 ? 1 : m / s; // lim_{SNR→0} min(SNR, γ)/SNR = 1
  });
}

/** The training loss for one batch of data x_0 [B, …]. */
export function trainingLoss(model: Model, schedule: NoiseSchedule, x0: Tensor, opts: TrainingLossOptions = {}): TrainingLoss {
  const fn = 'trainingLoss';
  const prediction = checkPrediction(fn, opts.prediction ?? 'epsilon');
  const variance = checkVariance(fn, opts.variance ?? 'fixedLarge');
  const b = batchOf(fn, x0);
  const gen = opts.gen ?? defaultGenerator;
  const ts = opts.t !== undefined ? timesteps(fn, schedule, opts.t, b) : Float64Array.from({ length: b }, () => gen.int(schedule.T));
  const noise = opts.noise ?? randn(x0.shape, gen);
  checkSameShape(fn, 'x_0', x0, 'noise', noise);
  const a = gather(schedule.sqrtAlphasCumprod, ts), s = gather(schedule.sigmas, ts);
  const xt = axpby(a, x0, s, noise);
  const out = model(xt, new Tensor(Float32Array.from(ts), [b]), opts.cond);
  const learned = variance === 'learnedRange';
  const { pred, v } = splitModelOutput(fn, out, xt, learned);
  const target = prediction === 'epsilon' ? noise : prediction === 'x0' ? x0 : vFromEpsX0(noise, x0, a, s);
  const d = sub(pred, target);
  const mse = meanFlat(mul(d, d));
  let loss: Tensor;
  const w = opts.weighting ?? { kind: 'none' };
  if (w.kind === 'none') loss = mean(mse);
  else if (w.kind === 'minSnr') loss = mean(mul(mse, coefTensor(minSnrWeights(gather(schedule.snr, ts), w.gamma ?? 5, prediction), mse)));
  else fail(fn, `unknown weighting ${JSON.stringify((w as { kind: unknown }).kind)} (expected none, minSnr)`);
  let vb: Tensor | null = null;
  if (learned) {
    const lambda = opts.lambdaVlb ?? 0.001;
    if (!(lambda >= 0)) rangeFail(fn, `lambdaVlb must be ≥ 0, got ${lambda}`);
    // Stop-gradient on the mean: the bound sees the prediction as a constant and trains only v.
    const frozen = concat([pred.detach(), v!], 1);
    vb = vlbTerm(schedule, frozen, x0, xt, ts, { prediction, variance });
    loss = add(loss, mul(mean(vb), lambda * schedule.T));
  }
  return { loss, mse, vb, t: ts };
}
