/**
 * Shared plumbing: timestep arguments, per-sample coefficients (float64 on the host, float32 once uploaded)
 * and the one-line errors that name the calling function.
 */
import { Tensor, add, fmt, mul, sameShape, tensor } from '../tensor/index.js';
import type { NoiseSchedule } from './schedules.js';

/** Timesteps: one number for the whole batch, one per sample, or a [B] tensor (float32 or int32). */
export type TimeLike = number | ArrayLike<number> | Tensor;

export function fail(fn: string, msg: string): never {
  throw new Error(`${fn}: ${msg}`);
}

export function rangeFail(fn: string, msg: string): never {
  throw new RangeError(`${fn}: ${msg}`);
}

/** The batch size of x (its first axis); x must have one. */
export function batchOf(fn: string, x: Tensor, name = 'x'): number {
  if (x.ndim < 1) fail(fn, `${name} must have a batch axis, got shape ${fmt(x.shape)}`);
  return x.shape[0];
}

export function checkSameShape(fn: string, aName: string, a: Tensor, bName: string, b: Tensor): void {
  if (!sameShape(a.shape, b.shape)) fail(fn, `${aName} ${fmt(a.shape)} and ${bName} ${fmt(b.shape)} differ in shape`);
}

/**
 * Timesteps as float64 values, one per sample of a batch of `batch` (a single value is repeated). Each must lie
 * in [0, T−1], and be an integer unless `fractional`.
 */
export function timesteps(fn: string, schedule: NoiseSchedule, t: TimeLike, batch: number, fractional = false): Float64Array {
  let vals: ArrayLike<number>;
  if (typeof t === 'number') vals = [t];
  else if (t instanceof Tensor) {
    if (t.ndim > 1) fail(fn, `timesteps must be a scalar or [B], got shape ${fmt(t.shape)}`);
    vals = t.data;
  } else vals = t;
  if (vals.length !== 1 && vals.length !== batch) fail(fn, `${vals.length} timesteps for a batch of ${batch}`);
  const out = new Float64Array(batch);
  for (let i = 0; i < batch; i++) {
    const v = vals.length === 1 ? vals[0] : vals[i];
    if (!(v >= 0 && v <= schedule.T - 1) || (!fractional && !Number.isInteger(v))) {
      rangeFail(fn, `timestep ${v} is out of range (${fractional ? 'real' : 'integer'} t in [0, ${schedule.T - 1}])`);
    }
    out[i] = v;
  }
  return out;
}

/** ᾱ at each timestep (interpolated between integers; see NoiseSchedule.alphaBarAt). */
export function alphaBars(schedule: NoiseSchedule, ts: Float64Array): Float64Array {
  return ts.map((t) => schedule.alphaBarAt(t));
}

/** arr[t] per sample, for integer timesteps. */
export function gather(arr: Float64Array, ts: Float64Array): Float64Array {
  return ts.map((t) => arr[t]);
}

/** Per-sample coefficient c (length B), uploaded as float32 [B, 1, …, 1] to broadcast against x. */
export function coefTensor(c: ArrayLike<number>, x: Tensor): Tensor {
  return tensor(Float32Array.from(c), [c.length, ...new Array<number>(Math.max(x.ndim - 1, 0)).fill(1)]);
}

function allEqual(c: ArrayLike<number>): boolean {
  for (let i = 1; i < c.length; i++) if (c[i] !== c[0]) return false;
  return true;
}

/** c ⊙ x with one coefficient per sample; a shared coefficient is one fused affine kernel. */
export function scale(x: Tensor, c: ArrayLike<number> | number): Tensor {
  if (typeof c === 'number') return mul(x, c);
  return allEqual(c) ? mul(x, c[0]) : mul(x, coefTensor(c, x));
}

/** a ⊙ x + b ⊙ y, per-sample coefficients. */
export function axpby(a: ArrayLike<number> | number, x: Tensor, b: ArrayLike<number> | number, y: Tensor): Tensor {
  return add(scale(x, a), scale(y, b));
}

/** A float32 [B] tensor of model timesteps. */
export function timeTensor(ts: ArrayLike<number> | number, batch: number): Tensor {
  const out = new Float32Array(batch);
  if (typeof ts === 'number') out.fill(ts);
  else for (let i = 0; i < batch; i++) out[i] = ts[i];
  return tensor(out, [batch]);
}
