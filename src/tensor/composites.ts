/**
 * Composite operations, each written once over the primitive ops (autograd runs through them, so they need
 * no gradient rules of their own). A backend may provide a fused kernel for one (src/backends/backend.ts,
 * kind 'fused'): the op then runs that kernel and its backward kernel instead, and test/fused.test.ts holds
 * the two to the same results.
 */
import type { ActivationOp, FStore } from '../backends/backend.js';
import { conv2dBiasGrad } from './gradients.js';
import {
  type Conv2dOptions, add, affine, assign, conv2d, div, erf, exp, expand, log, matmul, max, mean, mul,
  permute, reshape, rsqrt, sqrt, square, sub, sum, tanh,
} from './ops.js';
import { ShapeError, checkNonEmpty, conv2dGeometry, fmt, normalizeAxis, sameShape, sizeOf } from './shape.js';
import { Tensor, backend, noGrad, recomputable, recordOp, scope } from './tensor.js';

// ---------------------------------------------------------------- activations

function activation(op: ActivationOp, x: Tensor, composite: (x: Tensor) => Tensor): Tensor {
  const be = backend();
  if (!be.activation || !be.activationBackward) return composite(x);
  const fwd = be.activation, bwd = be.activationBackward;
  const xd = x.storage(op), xShape = x.shape;
  return recordOp(op, fwd(op, xd), x.shape, [x], (g) => [new Tensor(bwd(op, xd, g.storage(op)), xShape)]);
}

/** σ(x) = ½ + ½·tanh(x/2): finite gradients everywhere (1/(1 + e^−x) overflows e^−x below −88). */
const sigmoidComposite = (x: Tensor) => affine(tanh(affine(x, 0.5)), 0.5, 0.5);

export const sigmoid = (x: Tensor) => activation('sigmoid', x, sigmoidComposite);
/** SiLU (swish): x·σ(x). */
export const silu = (x: Tensor) => activation('silu', x, (v) => mul(v, sigmoidComposite(v)));
/** GELU, exact (erf) form as PyTorch's default: x·½(1 + erf(x/√2)). */
export const gelu = (x: Tensor) => activation('gelu', x, (v) => mul(v, affine(erf(affine(v, Math.SQRT1_2)), 0.5, 0.5)));

// ---------------------------------------------------------------- softmax

function lastAxisFused(name: string, x: Tensor, axis: number,
  fwd: (xd: FStore, rows: number, d: number) => FStore, bwd: (y: FStore, dy: FStore, rows: number, d: number) => FStore): Tensor {
  const a = normalizeAxis(name, axis, x.ndim);
  if (a !== x.ndim - 1) {
    const perm = x.shape.map((_, i) => i);
    perm[a] = x.ndim - 1; perm[x.ndim - 1] = a;
    return permute(lastAxisFused(name, permute(x, perm), -1, fwd, bwd), perm);
  }
  const d = x.shape[a], rows = x.size / d;
  const y = fwd(x.storage(name), rows, d), xShape = x.shape;
  return recordOp(name, y, x.shape, [x], (g) => [new Tensor(bwd(y, g.storage(name), rows, d), xShape)]);
}

/** x minus its (constant, ungraded) maximum along `axis`: softmax is shift-invariant, exp no longer overflows. */
const shifted = (x: Tensor, a: number) => sub(x, max(x.detach(), a, true));

export function softmax(x: Tensor, axis = -1): Tensor {
  const a = normalizeAxis('softmax', axis, x.ndim);
  checkNonEmpty('softmax', x);
  const be = backend();
  if (be.softmax && be.softmaxBackward) {
    const f = be.softmax, b = be.softmaxBackward;
    return lastAxisFused('softmax', x, a, (xd, r, d) => f(xd, r, d), (y, dy, r, d) => b(y, dy, r, d));
  }
  const e = exp(shifted(x, a));
  return div(e, sum(e, a, true));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const a = normalizeAxis('logSoftmax', axis, x.ndim);
  checkNonEmpty('logSoftmax', x);
  const be = backend();
  if (be.logSoftmax && be.logSoftmaxBackward) {
    const f = be.logSoftmax, b = be.logSoftmaxBackward;
    return lastAxisFused('logSoftmax', x, a, (xd, r, d) => f(xd, r, d), (y, dy, r, d) => b(y, dy, r, d));
  }
  const z = shifted(x, a);
  return sub(z, log(sum(exp(z), a, true)));
}

// ---------------------------------------------------------------- normalization

export interface GroupNormOptions { eps?: number; silu?: boolean }

/** (x − mean)·rstd over the last axis of x, with the statistics of that axis. */
function standardize(x: Tensor, eps: number): Tensor {
  const d = sub(x, mean(x, -1, true));
  return mul(d, rsqrt(add(mean(square(d), -1, true), eps)));
}

/**
 * Group norm over x [N, C, ...] with per-channel gamma/beta [C]; `silu: true` applies SiLU after it (one fused
 * kernel where the backend has one: the UNet's norm → activation pair), identical to silu(groupNorm(x)).
 */
export function groupNorm(x: Tensor, groups: number, gamma?: Tensor | null, beta?: Tensor | null,
  { eps = 1e-5, silu: fuseSilu = false }: GroupNormOptions = {}): Tensor {
  const { n, c, hw } = groupNormShape('groupNorm', x, groups, gamma, beta);
  const be = backend();
  if (be.groupNorm && be.groupNormBackward) {
    const bwd = be.groupNormBackward, fwd = be.groupNorm;
    const xd = x.storage('groupNorm'), gd = gamma ? gamma.storage('groupNorm') : null, bd = beta ? beta.storage('groupNorm') : null;
    const r = fwd(xd, gd, bd, n, c, hw, groups, eps, fuseSilu);
    const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
    // The rule reads x and the statistics, not the output (see recordOp); x through the tensor, which a caller
    // may have freed to be rebuilt (see recomputable).
    const { mean: mu, rstd } = r, xShape = x.shape;
    const y = recordOp(fuseSilu ? 'groupNormSilu' : 'groupNorm', r.y, x.shape, inputs, (g) => {
      const gr = bwd(g.storage('groupNorm'), x.storage('groupNorm'), gd, bd, mu, rstd, n, c, hw, groups, fuseSilu);
      const out: (Tensor | null)[] = [new Tensor(gr.dx, xShape)];
      if (gamma) out.push(gr.dgamma && new Tensor(gr.dgamma, [c]));
      if (beta) out.push(gr.dbeta && new Tensor(gr.dbeta, [c]));
      return out;
    });
    // The rule keeps x anyway, so y can be rebuilt from it: a consumer that frees y (a UNet block, after the
    // convolution that reads it) trades one activation for a norm kernel in backward.
    return y.node ? recomputable(y, () => fwd(x.storage('groupNorm'), gd, bd, n, c, hw, groups, eps, fuseSilu).y) : y;
  }
  let y = reshape(standardize(reshape(x, [n, groups, (c / groups) * hw]), eps), [n, c, hw]);
  if (gamma) y = mul(y, reshape(gamma, [c, 1]));
  if (beta) y = add(y, reshape(beta, [c, 1]));
  y = reshape(y, x.shape);
  return fuseSilu ? silu(y) : y;
}

/** x's [n, c, hw] as a group norm of `groups` groups sees it, checked (errors name `op`). */
function groupNormShape(op: string, x: Tensor, groups: number, gamma?: Tensor | null, beta?: Tensor | null) {
  if (x.ndim < 2) throw new ShapeError(`${op}: expected [N, C, ...], got ${fmt(x.shape)}`);
  const [n, c] = x.shape, hw = sizeOf(x.shape.slice(2));
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new ShapeError(`${op}: ${c} channels of ${fmt(x.shape)} cannot be split into ${groups} groups`);
  }
  for (const [name, p] of [['gamma', gamma], ['beta', beta]] as const) {
    if (p && (p.ndim !== 1 || p.shape[0] !== c)) throw new ShapeError(`${op}: ${name} ${fmt(p.shape)} does not match ${c} channels`);
  }
  checkNonEmpty(op, x);
  return { n, c, hw };
}

export interface GroupNormConv2dOptions extends Conv2dOptions {
  /** [N, O], added to each image's output channels after the bias (a UNet block's time embedding). */
  imageBias?: Tensor | null;
  /** [N, O, OH, OW], added to the output last (a residual connection). */
  residual?: Tensor | null;
}

/**
 * conv2d(groupNorm(x, groups, gamma, beta, normOpts), w, bias, convOpts) (+ imageBias, + residual): the UNet's
 * norm → SiLU → convolution, recorded as one op whose gradient rule reads x (so `freeAfterUse(out, x)` holds for
 * the whole). Where the backend applies the norm as the convolution reads its input (conv2dNormed: native
 * Winograd), the normalized tensor is never stored, neither in forward nor for the weight gradient, and the
 * additions are made while the output is in cache; elsewhere the normalized tensor is made, consumed and given
 * back, and rebuilt from x for the weight gradient. The same values and gradients as the separate ops.
 */
export function groupNormConv2d(x: Tensor, groups: number, gamma: Tensor | null | undefined, beta: Tensor | null | undefined,
  normOpts: GroupNormOptions | undefined, w: Tensor, bias?: Tensor | null, convOpts: GroupNormConv2dOptions = {}): Tensor {
  const be = backend();
  const { n, c, hw } = groupNormShape('groupNormConv2d', x, groups, gamma, beta);
  const g = conv2dGeometry('groupNormConv2d', x, w, bias, convOpts);
  const { imageBias, residual } = convOpts;
  if (imageBias && !sameShape(imageBias.shape, [n, g.o])) {
    throw new ShapeError(`groupNormConv2d: imageBias ${fmt(imageBias.shape)} must be [${n}, ${g.o}] (images, output channels)`);
  }
  if (residual && !sameShape(residual.shape, [n, g.o, g.oh, g.ow])) {
    throw new ShapeError(`groupNormConv2d: residual ${fmt(residual.shape)} must be the output's shape ${fmt([n, g.o, g.oh, g.ow])}`);
  }
  const epilogue = (y: Tensor) => {
    if (imageBias) y = add(y, reshape(imageBias, [n, g.o, 1, 1]));
    return residual ? add(y, residual) : y;
  };
  if (!be.groupNorm || !be.groupNormBackward) {
    // the composites (host backends: nothing to give back early)
    return epilogue(conv2d(groupNorm(x, groups, gamma, beta, normOpts), w, bias, convOpts));
  }
  const { eps = 1e-5, silu = false } = normOpts ?? {};
  const gnFwd = be.groupNorm, gnBwd = be.groupNormBackward, convIn = be.conv2dBackwardInput, convW = be.conv2dBackwardWeight;
  const normed = be.groupNormStats && be.conv2dNormed && be.conv2dBackwardWeightNormed
    ? { stats: be.groupNormStats, fwd: be.conv2dNormed, bwdW: be.conv2dBackwardWeightNormed } : null;
  const xd = x.storage('groupNormConv2d'), wd = w.storage('groupNormConv2d');
  const gd = gamma ? gamma.storage('groupNormConv2d') : null, bd = beta ? beta.storage('groupNormConv2d') : null;
  const biasd = bias ? bias.storage('groupNormConv2d') : null;
  const temp = (d: FStore) => new Tensor(d, [n, c, g.h, g.w]);  // a storage this op made and gives back at once
  let y: FStore, mu: FStore, rstd: FStore;
  // (the additions: inside the kernel where there is one, else after it, within this op)
  const extras = [...(imageBias ? [imageBias] : []), ...(residual ? [residual] : [])];
  if (normed) {
    ({ mean: mu, rstd } = normed.stats(xd, n, c, hw, groups, eps));
    y = normed.fwd(xd, gd, bd, mu, rstd, groups, silu, wd, biasd, imageBias ? imageBias.storage('groupNormConv2d') : null,
      residual ? residual.storage('groupNormConv2d') : null, g);
  } else {
    const r = gnFwd(xd, gd, bd, n, c, hw, groups, eps, silu);
    ({ mean: mu, rstd } = r);
    y = be.conv2d(r.y, wd, biasd, g);
    temp(r.y).freeData();
    if (extras.length) {
      const conv = new Tensor(y, [n, g.o, g.oh, g.ow]), sum = noGrad(() => epilogue(conv));
      conv.freeData();
      y = sum.shareStorage() as FStore;
    }
  }
  const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : []), w, ...(bias ? [bias] : []), ...extras];
  return recordOp('groupNormConv2d', y, [g.n, g.o, g.oh, g.ow], inputs, (gy) => {
    const gyd = gy.storage('groupNormConv2d'), xs = x.storage('groupNormConv2d');
    let dx: Tensor | null = null, dgamma: Tensor | null = null, dbeta: Tensor | null = null;
    if (x.requiresGrad || gamma?.requiresGrad || beta?.requiresGrad) {
      // the gradient of the normalized input, then through the norm (and SiLU)
      const da = temp(convIn(gyd, w.storage('groupNormConv2d'), g));
      const r = gnBwd(da.storage('groupNormConv2d'), xs, gd, bd, mu, rstd, n, c, hw, groups, silu);
      da.freeData();
      dx = new Tensor(r.dx, x.shape);
      dgamma = r.dgamma && new Tensor(r.dgamma, [c]);
      dbeta = r.dbeta && new Tensor(r.dbeta, [c]);
    }
    let dw: Tensor | null = null;
    if (w.requiresGrad) {
      if (normed) dw = new Tensor(normed.bwdW(xs, gd, bd, mu, rstd, groups, silu, gyd, g), w.shape);
      else {
        const a = temp(gnFwd(xs, gd, bd, n, c, hw, groups, eps, silu).y);
        dw = new Tensor(convW(a.storage('groupNormConv2d'), gyd, g), w.shape);
        a.freeData();
      }
    }
    const db = bias?.requiresGrad ? conv2dBiasGrad(gy, g) : null;
    const grads = [dx, ...(gamma ? [dgamma] : []), ...(beta ? [dbeta] : []), dw, ...(bias ? [db] : [])];
    if (imageBias) {
      grads.push(imageBias.requiresGrad ? new Tensor(backend().reduce('sum', gy.storage('groupNormConv2d'), n * g.o, g.oh * g.ow, 1), [n, g.o]) : null);
    }
    if (residual) grads.push(residual.requiresGrad ? gy : null);
    return grads;
  });
}

/** Layer norm over the last axis with gamma/beta [D]. */
export function layerNorm(x: Tensor, gamma?: Tensor | null, beta?: Tensor | null, eps = 1e-5): Tensor {
  if (x.ndim < 1) throw new ShapeError('layerNorm: scalar input');
  const d = x.shape[x.ndim - 1], rows = x.size / Math.max(d, 1);
  for (const [name, p] of [['gamma', gamma], ['beta', beta]] as const) {
    if (p && (p.ndim !== 1 || p.shape[0] !== d)) throw new ShapeError(`layerNorm: ${name} ${fmt(p.shape)} does not match last axis of ${fmt(x.shape)}`);
  }
  checkNonEmpty('layerNorm', x);
  const be = backend();
  if (be.layerNorm && be.layerNormBackward) {
    const bwd = be.layerNormBackward;
    const xd = x.storage('layerNorm'), gd = gamma ? gamma.storage('layerNorm') : null;
    const r = be.layerNorm(xd, gd, beta ? beta.storage('layerNorm') : null, rows, d, eps);
    const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
    const { mean: mu, rstd } = r, xShape = x.shape;
    return recordOp('layerNorm', r.y, x.shape, inputs, (g) => {
      const gr = bwd(g.storage('layerNorm'), xd, gd, mu, rstd, rows, d, !!beta);
      const out: (Tensor | null)[] = [new Tensor(gr.dx, xShape)];
      if (gamma) out.push(gr.dgamma && new Tensor(gr.dgamma, [d]));
      if (beta) out.push(gr.dbeta && new Tensor(gr.dbeta, [d]));
      return out;
    });
  }
  let y = standardize(x, eps);
  if (gamma) y = mul(y, gamma);
  if (beta) y = add(y, beta);
  return y;
}

// ---------------------------------------------------------------- attention

/** softmax(q kᵀ · scale) v over q [..., Lq, d], k [..., Lk, d], v [..., Lk, dv]; scale defaults to 1/√d. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, scale?: number): Tensor {
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim || q.shape[q.ndim - 1] !== k.shape[k.ndim - 1]
    || k.shape[k.ndim - 2] !== v.shape[v.ndim - 2]) {
    throw new ShapeError(`scaledDotProductAttention: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} do not fit [..., L, d]`);
  }
  const s = scale ?? 1 / Math.sqrt(q.shape[q.ndim - 1]);
  const scores = mul(matmul(q, k, { transB: true }), s);
  return matmul(softmax(scores, -1), v);
}

// ---------------------------------------------------------------- resampling

function planes(op: string, x: Tensor): [number, number, number] {
  if (x.ndim < 3) throw new ShapeError(`${op}: expected a tensor [..., H, W] of rank ≥ 3, got ${fmt(x.shape)}`);
  const [h, w] = x.shape.slice(-2);
  return [sizeOf(x.shape.slice(0, -2)), h, w];
}

/** Nearest-neighbour upsampling by 2 on the last two axes (a broadcast copy: every value written twice per axis). */
export function upsampleNearest2x(x: Tensor): Tensor {
  const [p, h, w] = planes('upsampleNearest2x', x);
  const outShape = [...x.shape.slice(0, -2), 2 * h, 2 * w];
  const be = backend();
  if (be.upsampleNearest2x && be.avgPool2x2) {
    const up = be.upsampleNearest2x, pool = be.avgPool2x2, xShape = x.shape;
    return recordOp('upsampleNearest2x', up(x.storage('upsample'), p, h, w), outShape, [x], (g) => [
      new Tensor(be.affine(pool(g.storage('upsample'), p, 2 * h, 2 * w), 4, 0), xShape),
    ]);
  }
  return reshape(expand(reshape(x, [p, h, 1, w, 1]), [p, h, 2, w, 2]), outShape);
}

/** 2×2 average pooling, stride 2, on the last two axes (which must be even). */
export function avgPool2x2(x: Tensor): Tensor {
  const [p, h, w] = planes('avgPool2x2', x);
  if (h % 2 || w % 2) throw new ShapeError(`avgPool2x2: spatial size ${h}×${w} of ${fmt(x.shape)} is not even`);
  const outShape = [...x.shape.slice(0, -2), h / 2, w / 2];
  const be = backend();
  if (be.upsampleNearest2x && be.avgPool2x2) {
    const up = be.upsampleNearest2x, pool = be.avgPool2x2, xShape = x.shape;
    return recordOp('avgPool2x2', pool(x.storage('avgPool2x2'), p, h, w), outShape, [x], (g) => [
      new Tensor(be.affine(up(g.storage('avgPool2x2'), p, h / 2, w / 2), 0.25, 0), xShape),
    ]);
  }
  return reshape(affine(sum(reshape(x, [p, h / 2, 2, w / 2, 2]), [2, 4]), 0.25), outShape);
}

// ---------------------------------------------------------------- in-place updates (optimizer state)

export interface AdamWStep { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number }

/**
 * One AdamW update of p, m and v in place (torch.optim.AdamW): p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g;
 * v ← β2·v + (1−β2)·g²; p ← p − lr·(m/(1−β1^step)) / (√(v/(1−β2^step)) + eps). The backend's fused kernel
 * where it has one, else engine ops written back with `assign`. Not recorded; returns p.
 */
export function adamWUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamWStep): Tensor {
  const be = backend();
  if (be.adamW) {
    be.adamW(p.storage('adamW', be), g.storage('adamW', be), m.storage('adamW', be), v.storage('adamW', be), h.lr, h.beta1, h.beta2,
      h.eps, h.weightDecay, h.step);
    return p;
  }
  const bc1 = 1 - Math.pow(h.beta1, h.step), bc2 = 1 - Math.pow(h.beta2, h.step);
  scope(() => noGrad(() => {
    const m1 = add(affine(m, h.beta1), affine(g, 1 - h.beta1));
    const v1 = add(affine(v, h.beta2), affine(square(g), 1 - h.beta2));
    const update = div(affine(m1, h.lr / bc1), affine(sqrt(affine(v1, 1 / bc2)), 1, h.eps));
    const p1 = sub(affine(p, 1 - h.lr * h.weightDecay), update);
    assign(m, m1);
    assign(v, v1);
    assign(p, p1);
  }));
  return p;
}

/** s ← s + a·(v − s) in place (an EMA update): the fused kernel where the backend has one. Not recorded; returns s. */
export function lerpInPlace(s: Tensor, v: Tensor, a: number): Tensor {
  const be = backend();
  if (be.lerpInPlace) be.lerpInPlace(s.storage('lerp', be), v.storage('lerp', be), a);
  else scope(() => noGrad(() => { assign(s, add(s, affine(sub(v, s), a))); }));
  return s;
}
