/**
 * Keeping the predicted x_0 inside the data range during sampling.
 *
 * Static clipping clamps x̂_0 to [min, max] (DDPM's "clip_denoised"). Dynamic thresholding (Saharia et al. 2022,
 * Imagen, §2.3): per sample, s = max(1, the p-th quantile of |x̂_0|) (optionally capped at maxValue), then
 * x̂_0 ← clamp(x̂_0, −s, s)/s, which pulls saturated pixels inwards instead of flattening them; it matters
 * with large guidance weights.
 */
import { Tensor, clamp, tensor } from '../tensor/index.js';
import { fail, rangeFail } from './util.js';

export type X0Clip =
  | { kind: 'clip'; min?: number; max?: number }
  | { kind: 'dynamic'; percentile?: number; maxValue?: number };

/** Applies a clip config to a predicted x_0 (undefined: unchanged). */
export function applyX0Clip(x0: Tensor, clip: X0Clip | undefined): Tensor {
  if (!clip) return x0;
  if (clip.kind === 'clip') {
    const lo = clip.min ?? -1, hi = clip.max ?? 1;
    if (!(lo < hi)) rangeFail('applyX0Clip', `clip range [${lo}, ${hi}] is empty`);
    return clamp(x0, lo, hi);
  }
  if (clip.kind === 'dynamic') return dynamicThreshold(x0, clip.percentile, clip.maxValue);
  return fail('applyX0Clip', `unknown clip kind ${JSON.stringify((clip as { kind: unknown }).kind)} (expected clip, dynamic)`);
}

/** The p-quantile of sorted values, linearly interpolated (torch.quantile's default). */
function quantileSorted(v: Float64Array, p: number): number {
  const pos = p * (v.length - 1), lo = Math.floor(pos), hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/** Imagen's dynamic thresholding, per sample (the first axis). */
export function dynamicThreshold(x0: Tensor, percentile = 0.995, maxValue = Infinity): Tensor {
  if (!(percentile > 0 && percentile <= 1)) rangeFail('dynamicThreshold', `percentile ${percentile} is not in (0, 1]`);
  if (!(maxValue >= 1)) rangeFail('dynamicThreshold', `maxValue ${maxValue} must be ≥ 1`);
  if (x0.ndim < 1 || x0.size === 0) fail('dynamicThreshold', `expected a non-empty batch, got shape [${x0.shape.join(', ')}]`);
  const b = x0.shape[0], n = x0.size / b, d = x0.data, out = new Float32Array(x0.size);
  const abs = new Float64Array(n);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < n; j++) abs[j] = Math.abs(d[i * n + j]);
    abs.sort();
    const s = Math.min(Math.max(quantileSorted(abs, percentile), 1), maxValue);
    for (let j = 0; j < n; j++) out[i * n + j] = Math.min(Math.max(d[i * n + j], -s), s) / s;
  }
  return tensor(out, x0.shape);
}
