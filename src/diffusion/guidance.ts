/**
 * Classifier-free guidance: Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6, as a model wrapper:
 *
 *   ε̃(x_t, c) = ε(x_t, ∅) + w (ε(x_t, c) − ε(x_t, ∅))      (w = scale; w = 1 is the conditional model)
 *
 * The combination is linear in the output, so it applies as is to x_0- or v-predicting models. With a learned
 * variance only the prediction channels are guided; the variance channels are the conditional ones (GLIDE).
 * By default both evaluations run as one batch of 2B.
 */
import { Tensor, add, concat, fmt, mul, split, sub } from '../tensor/index.js';
import type { Model } from './samplers/common.js';
import { fail } from './util.js';

export interface GuidanceOptions {
  /** Guidance weight w (0: unconditional, 1: conditional, > 1: guided). */
  scale: number;
  /** The null condition ∅: one row (broadcast over the batch) or one per sample, same dtype as cond. */
  nullCond: Tensor;
  /** The model returns learned-variance channels on axis 1 (only the first half is guided). */
  learnedVariance?: boolean;
  /** Evaluate cond and null as one batch of 2B (default true); false makes two calls. */
  batched?: boolean;
}

/** Rows of `a` then rows of `b` (axis 0), for float32 and int32 tensors alike. Host-resident rows without
 *  gradients (labels, timesteps) are joined on the host, where a model reads them. */
function concatRows(a: Tensor, b: Tensor): Tensor {
  if (a.dtype === 'float32' && (a.onDevice || b.onDevice || a.requiresGrad || b.requiresGrad)) return concat([a, b], 0);
  const out = a.dtype === 'int32' ? new Int32Array(a.size + b.size) : new Float32Array(a.size + b.size);
  out.set(a.data, 0);
  out.set(b.data, a.size);
  return new Tensor(out, [a.shape[0] + b.shape[0], ...a.shape.slice(1)]);
}

/** nullCond with the batch size of cond. */
function nullBatch(nullCond: Tensor, cond: Tensor): Tensor {
  const b = cond.shape[0];
  const rest = (t: Tensor) => t.shape.slice(1).join(',');
  if (nullCond.dtype !== cond.dtype || nullCond.ndim !== cond.ndim || rest(nullCond) !== rest(cond) || (nullCond.shape[0] !== 1 && nullCond.shape[0] !== b)) {
    fail('classifierFreeGuidance', `null condition ${nullCond.dtype} ${fmt(nullCond.shape)} does not match cond ${cond.dtype} ${fmt(cond.shape)} (expected one row or ${b})`);
  }
  if (nullCond.shape[0] === b) return nullCond;
  const n = nullCond.size, Ctor = nullCond.dtype === 'int32' ? Int32Array : Float32Array;
  const out = new Ctor(n * b);
  for (let i = 0; i < b; i++) out.set(nullCond.data, i * n);
  return new Tensor(out, cond.shape);
}

/** Wraps a conditional model so that it returns the guided prediction. */
export function classifierFreeGuidance(model: Model, opts: GuidanceOptions): Model {
  const { scale, nullCond, learnedVariance = false, batched = true } = opts;
  if (!Number.isFinite(scale)) throw new RangeError(`classifierFreeGuidance: scale must be a finite number, got ${scale}`);
  return (x: Tensor, t: Tensor, cond?: Tensor) => {
    if (!cond) fail('classifierFreeGuidance', 'the guided model needs a cond (pass one to the sampler)');
    const b = x.shape[0];
    if (cond.ndim < 1 || cond.shape[0] !== b) fail('classifierFreeGuidance', `cond ${fmt(cond.shape)} does not have the batch size ${b} of x_t ${fmt(x.shape)}`);
    const nc = nullBatch(nullCond, cond);
    let outC: Tensor, outU: Tensor;
    if (batched) {
      const out = model(concat([x, x], 0), concatRows(t, t), concatRows(cond, nc));
      if (out.ndim < 1 || out.shape[0] !== 2 * b) fail('classifierFreeGuidance', `model output ${fmt(out.shape)} for a batch of ${2 * b}`);
      [outC, outU] = split(out, 2, 0);
    } else {
      outC = model(x, t, cond);
      outU = model(x, t, nc);
    }
    if (!learnedVariance) return add(outU, mul(sub(outC, outU), scale));
    if (outC.ndim < 2 || outC.shape[1] % 2 !== 0) fail('classifierFreeGuidance', `learned-variance output ${fmt(outC.shape)} has no even channel axis`);
    const [pc, vc] = split(outC, 2, 1), [pu] = split(outU, 2, 1);
    return concat([add(pu, mul(sub(pc, pu), scale)), vc], 1);
  };
}
