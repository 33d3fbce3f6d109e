/**
 * Differentiable operations over the primitive kernels. Each validates its arguments (so no bad input
 * reaches a kernel), calls the current backend's kernel and records the primitive's gradient rule
 * (./gradients.ts). Composites (activations, norms, softmax, attention, resampling) are in ./composites.ts.
 */
import type { BinaryOp, FStore, UnaryOp } from '../backends/backend.js';
import { binaryKernel, copyKernel, whereKernel } from './dispatch.js';
import { BINARY_GRADIENTS, BINARY_READS, GRADIENTS, UNARY_GRADIENTS, UNARY_READS } from './gradients.js';
import { Generator, defaultGenerator } from './random.js';
import {
  ShapeError, broadcastShapes, broadcastStrides, checkNonEmpty, conv2dGeometry, fmt, normalizeAxes, normalizeAxis, sameShape,
  sizeOf, stridesOf,
} from './shape.js';
import { Tensor, backend, recordOp, scalar } from './tensor.js';

export type TensorLike = Tensor | number;

const toTensor = (x: TensorLike): Tensor => (typeof x === 'number' ? scalar(x) : x);


// ---------------------------------------------------------------- elementwise, unary

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  // The rule's closure holds only the operands it reads (see recordOp).
  const reads = UNARY_READS[op];
  const xs = reads.x ? x : null;
  let ys: Tensor | null = null;
  const out: Tensor = recordOp(op, backend().unary(op, x.storage(op)), x.shape, [x], (g) => [UNARY_GRADIENTS[op](g, xs!, ys!)]);
  if (reads.y) ys = out;
  return out;
}

export const neg = (x: Tensor) => unaryOp('neg', x);
export const exp = (x: Tensor) => unaryOp('exp', x);
export const log = (x: Tensor) => unaryOp('log', x);
export const sqrt = (x: Tensor) => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor) => unaryOp('rsqrt', x);
export const sin = (x: Tensor) => unaryOp('sin', x);
export const cos = (x: Tensor) => unaryOp('cos', x);
export const tanh = (x: Tensor) => unaryOp('tanh', x);
export const relu = (x: Tensor) => unaryOp('relu', x);
export const abs = (x: Tensor) => unaryOp('abs', x);
export const square = (x: Tensor) => unaryOp('square', x);
export const reciprocal = (x: Tensor) => unaryOp('reciprocal', x);
/** The error function (GELU's building block). */
export const erf = (x: Tensor) => unaryOp('erf', x);

/** y = x·scale + shift, one fused kernel for arithmetic with plain numbers. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  return recordOp('affine', backend().affine(x.storage('affine'), scale, shift), x.shape, [x], (g) => [GRADIENTS.affine(g, scale)]);
}

export function clamp(x: Tensor, lo = -Infinity, hi = Infinity): Tensor {
  if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi) throw new RangeError(`clamp: invalid range [${lo}, ${hi}]`);
  return recordOp('clamp', backend().clamp(x.storage('clamp'), lo, hi), x.shape, [x], (g) => [GRADIENTS.clamp(g, x, lo, hi)]);
}

// ---------------------------------------------------------------- elementwise, binary

/** Sums a broadcast gradient back to `shape`. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return reshape(sum(g, axes, false), shape);
}

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const ad = a.storage(op), bd = b.storage(op);
  const outShape = broadcastShapes(op, a.shape, b.shape);
  const data = binaryKernel(op, ad, broadcastStrides(a.shape, outShape), bd, broadcastStrides(b.shape, outShape), outShape);
  const rule = BINARY_GRADIENTS[op];
  if (!rule) return new Tensor(data, outShape);
  // The rule's closure holds only the operands it reads (see recordOp); shapes and flags are taken now.
  const reads = BINARY_READS[op], aShape = a.shape, bShape = b.shape, aGrad = a.requiresGrad, bGrad = b.requiresGrad;
  const as = reads.ab ? a : null, bs = reads.ab ? b : null;
  let outs: Tensor | null = null;
  const out: Tensor = recordOp(op, data, outShape, [a, b], (g) => {
    const [ga, gb] = rule(g, as!, bs!, outs!);
    return [ga && aGrad ? sumTo(ga, aShape) : null, gb && bGrad ? sumTo(gb, bShape) : null];
  });
  if (reads.out) outs = out;
  return out;
}

export function add(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number') return affine(toTensor(a), 1, b);
  if (typeof a === 'number') return affine(b, 1, a);
  return binaryOp('add', a, b);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number') return affine(toTensor(a), 1, -b);
  if (typeof a === 'number') return affine(b, -1, a);
  return binaryOp('sub', a, b);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number') return affine(toTensor(a), b, 0);
  if (typeof a === 'number') return affine(b, a, 0);
  return binaryOp('mul', a, b);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number') return affine(toTensor(a), 1 / b, 0);
  return binaryOp('div', toTensor(a), b);
}

/** a ** b; a scalar exponent uses a dedicated kernel. */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number') {
    const x = toTensor(a);
    return recordOp('pow', backend().powScalar(x.storage('pow'), b), x.shape, [x], (g) => [GRADIENTS.powScalar(g, x, b)]);
  }
  return binaryOp('pow', toTensor(a), b);
}

export const maximum = (a: Tensor, b: Tensor) => binaryOp('maximum', a, b);
export const minimum = (a: Tensor, b: Tensor) => binaryOp('minimum', a, b);

/** Comparisons: 1 where true, 0 elsewhere; not differentiable. */
export const eq = (a: TensorLike, b: TensorLike) => binaryOp('eq', toTensor(a), toTensor(b));
export const gt = (a: TensorLike, b: TensorLike) => binaryOp('gt', toTensor(a), toTensor(b));
export const lt = (a: TensorLike, b: TensorLike) => binaryOp('lt', toTensor(a), toTensor(b));

/** cond ? a : b, with broadcasting; cond is a float tensor (nonzero = true). */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const ta = toTensor(a), tb = toTensor(b);
  const cd = cond.storage('where'), ad = ta.storage('where'), bd = tb.storage('where');
  const outShape = broadcastShapes('where', cond.shape, ta.shape, tb.shape);
  const data = whereKernel(cd, broadcastStrides(cond.shape, outShape), ad, broadcastStrides(ta.shape, outShape),
    bd, broadcastStrides(tb.shape, outShape), outShape);
  return recordOp('where', data, outShape, [ta, tb], (g) => GRADIENTS.where(g, cond, ta, tb));
}

// ---------------------------------------------------------------- reductions

/** Groups sorted axes into runs of adjacent axes, so each run is one [outer, size, inner] kernel call. */
function axisRuns(axes: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const a of axes) {
    const last = runs[runs.length - 1];
    if (last && last[1] === a) last[1] = a + 1;
    else runs.push([a, a + 1]);
  }
  return runs;
}

function reduceRaw(op: 'sum' | 'max', x: Tensor, axes: number[]): { data: FStore; keptShape: number[] } {
  let data = x.storage(op);
  const shape = [...x.shape];
  for (const [lo, hi] of axisRuns(axes).reverse()) {
    const outer = sizeOf(shape.slice(0, lo)), n = sizeOf(shape.slice(lo, hi)), inner = sizeOf(shape.slice(hi));
    data = backend().reduce(op, data, outer, n, inner);
    for (let i = lo; i < hi; i++) shape[i] = 1;
  }
  return { data, keptShape: shape };
}

function reducedShape(keptShape: number[], axes: number[], keepDim: boolean): number[] {
  return keepDim ? keptShape : keptShape.filter((_, i) => !axes.includes(i));
}

/** Sum over the given axes (all by default). */
export function sum(x: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  const ax = normalizeAxes('sum', axes, x.ndim);
  if (ax.length === 0) return x;
  const { data, keptShape } = reduceRaw('sum', x, ax);
  const xShape = x.shape;
  return recordOp('sum', data, reducedShape(keptShape, ax, keepDim), [x], (g) => [GRADIENTS.sum(g, xShape, keptShape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  const ax = normalizeAxes('mean', axes, x.ndim);
  const n = ax.reduce((acc, a) => acc * x.shape[a], 1);
  if (n === 0) throw new ShapeError(`mean: zero-size reduction over ${fmt(x.shape)}`);
  return mul(sum(x, ax, keepDim), 1 / n);
}

/** Maximum over axes; the gradient is shared equally among tied maxima. */
export function max(x: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  const ax = normalizeAxes('max', axes, x.ndim);
  checkNonEmpty('max', x);
  if (ax.length === 0) return x;
  const { data, keptShape } = reduceRaw('max', x, ax);
  const out: Tensor = recordOp('max', data, reducedShape(keptShape, ax, keepDim), [x], (g) => [GRADIENTS.max(g, x, out, ax, keptShape)]);
  return out;
}

// ---------------------------------------------------------------- shape and movement

/** Same data, new shape (one dimension may be -1). Shares storage: no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const sh = [...shape];
  const infer = sh.indexOf(-1);
  if (infer >= 0) {
    if (sh.indexOf(-1, infer + 1) >= 0) throw new ShapeError(`reshape: more than one -1 in ${fmt(shape)}`);
    const rest = sizeOf(sh.filter((_, i) => i !== infer));
    if (rest === 0 || x.size % rest !== 0) throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    sh[infer] = x.size / rest;
  }
  if (sh.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(sh) !== x.size) {
    throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  }
  if (sameShape(sh, x.shape)) return x;
  const xShape = x.shape;
  return recordOp('reshape', x.shareStorage(), sh, [x], (g) => [reshape(g, xShape)]);
}

export function flatten(x: Tensor, startAxis = 0): Tensor {
  const s = normalizeAxis('flatten', startAxis, x.ndim);
  return reshape(x, [...x.shape.slice(0, s), -1]);
}

function strided(src: FStore, srcOffset: number, srcStrides: number[], shape: number[]): FStore {
  const out = backend().empty(sizeOf(shape));
  copyKernel(src, srcOffset, srcStrides, shape, out, 0, stridesOf(shape));
  return out;
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || new Set(perm.map((p) => normalizeAxis('permute', p, x.ndim))).size !== x.ndim) {
    throw new ShapeError(`permute: ${fmt(perm)} is not a permutation of the axes of ${fmt(x.shape)}`);
  }
  const p = perm.map((a) => normalizeAxis('permute', a, x.ndim));
  if (p.every((a, i) => a === i)) return x;
  const st = stridesOf(x.shape);
  const outShape = p.map((a) => x.shape[a]);
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => { inv[a] = i; });
  return recordOp('permute', strided(x.storage('permute'), 0, p.map((a) => st[a]), outShape), outShape, [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const i = normalizeAxis('transpose', a, x.ndim), j = normalizeAxis('transpose', b, x.ndim);
  const perm = x.shape.map((_, k) => k);
  perm[i] = j; perm[j] = i;
  return permute(x, perm);
}

/** Broadcasts x to `shape` (materialized). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const outShape = broadcastShapes('expand', x.shape, shape);
  if (!sameShape(outShape, shape)) throw new ShapeError(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const xShape = x.shape;
  return recordOp('expand', strided(x.storage('expand'), 0, broadcastStrides(x.shape, outShape), outShape), outShape, [x],
    (g) => [sumTo(g, xShape)]);
}

/**
 * x[start_0:end_0, start_1:end_1, …]; missing trailing axes are taken whole. Negative indices count from the end.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  if (starts.length !== ends.length || starts.length > x.ndim) {
    throw new ShapeError(`slice: ${starts.length} starts and ${ends.length} ends for a tensor of shape ${fmt(x.shape)}`);
  }
  const lo: number[] = [], outShape: number[] = [];
  for (let i = 0; i < x.ndim; i++) {
    const d = x.shape[i];
    let s = i < starts.length ? starts[i] : 0, e = i < ends.length ? ends[i] : d;
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > d || s > e) {
      throw new ShapeError(`slice: range [${starts[i]}, ${ends[i]}) is out of bounds for axis ${i} of ${fmt(x.shape)}`);
    }
    lo.push(s); outShape.push(e - s);
  }
  if (sameShape(outShape, x.shape)) return x;
  const st = stridesOf(x.shape);
  const offset = lo.reduce((acc, s, i) => acc + s * st[i], 0);
  const xShape = x.shape, xSize = x.size;
  return recordOp('slice', strided(x.storage('slice'), offset, st, outShape), outShape, [x], (g) => {
    const dx = backend().full(xSize, 0);
    copyKernel(g.storage('slice'), 0, stridesOf(outShape), outShape, dx, offset, st);
    return [new Tensor(dx, xShape)];
  });
}

/** x narrowed to [start, start + length) on one axis. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis('narrow', axis, x.ndim);
  const starts = x.shape.map((_, i) => (i === a ? start : 0));
  const ends = x.shape.map((d, i) => (i === a ? start + length : d));
  return slice(x, starts, ends);
}

export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat: no tensors given');
  const first = tensors[0].shape;
  const a = normalizeAxis('concat', axis, first.length);
  for (const t of tensors) {
    if (t.ndim !== first.length || t.shape.some((d, i) => i !== a && d !== first[i])) {
      throw new ShapeError(`concat: shapes ${tensors.map((u) => fmt(u.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  const outShape = [...first];
  outShape[a] = tensors.reduce((acc, t) => acc + t.shape[a], 0);
  const out = backend().empty(sizeOf(outShape));
  const ost = stridesOf(outShape);
  const offsets: number[] = [];
  let pos = 0;
  for (const t of tensors) {
    offsets.push(pos);
    copyKernel(t.storage('concat'), 0, stridesOf(t.shape), t.shape, out, pos * ost[a], ost);
    pos += t.shape[a];
  }
  const parts = tensors.map((t) => ({ grad: t.requiresGrad, size: t.shape[a] }));
  return recordOp('concat', out, outShape, [...tensors], (g) =>
    parts.map((t, i) => (t.grad ? narrow(g, a, offsets[i], t.size) : null)));
}

/** Splits along an axis into pieces of the given sizes (or into `sections` equal pieces). */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normalizeAxis('split', axis, x.ndim), d = x.shape[a];
  let parts: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes <= 0 || d % sizes !== 0) {
      throw new ShapeError(`split: axis ${a} of ${fmt(x.shape)} cannot be split into ${sizes} equal parts`);
    }
    parts = new Array<number>(sizes).fill(d / sizes);
  } else {
    parts = [...sizes];
    if (parts.some((p) => !Number.isInteger(p) || p < 0) || parts.reduce((s, p) => s + p, 0) !== d) {
      throw new ShapeError(`split: sizes ${fmt(parts)} do not add up to axis ${a} of ${fmt(x.shape)}`);
    }
  }
  let pos = 0;
  return parts.map((p) => { const t = narrow(x, a, pos, p); pos += p; return t; });
}

/** Stacks same-shape tensors along a new axis. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('stack: no tensors given');
  const a = normalizeAxis('stack', axis, tensors[0].ndim + 1);
  return concat(tensors.map((t) => reshape(t, [...t.shape.slice(0, a), 1, ...t.shape.slice(a)])), a);
}

/**
 * Constant padding, PyTorch's F.pad convention: `pads` lists (before, after) pairs starting from the LAST axis.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new ShapeError(`pad: invalid padding ${fmt(pads)} for a tensor of shape ${fmt(x.shape)} (non-negative (before, after) pairs from the last axis)`);
  }
  const before = new Array<number>(x.ndim).fill(0);
  const outShape = [...x.shape];
  for (let i = 0; i < pads.length / 2; i++) {
    const ax = x.ndim - 1 - i;
    before[ax] = pads[2 * i];
    outShape[ax] += pads[2 * i] + pads[2 * i + 1];
  }
  const out = backend().full(sizeOf(outShape), value);
  const ost = stridesOf(outShape);
  const offset = before.reduce((acc, b, i) => acc + b * ost[i], 0);
  copyKernel(x.storage('pad'), 0, stridesOf(x.shape), x.shape, out, offset, ost);
  const xShape = x.shape, ends = before.map((b, i) => b + xShape[i]);
  return recordOp('pad', out, outShape, [x], (g) => [slice(g, before, ends)]);
}

// ---------------------------------------------------------------- matrix products

export interface MatmulOptions { transA?: boolean; transB?: boolean }

/**
 * Batched matrix product with broadcast batch dims: a [..., m, k] · b [..., k, n] (or their transposes
 * with transA / transB, which cost nothing: the kernel reads them transposed).
 */
export function matmul(a: Tensor, b: Tensor, { transA = false, transB = false }: MatmulOptions = {}): Tensor {
  if (a.ndim < 2 || b.ndim < 2) {
    throw new ShapeError(`matmul: operands must have at least 2 dimensions, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar, k = transA ? ar : ac, kb = transB ? bc : br, n = transB ? br : bc;
  if (k !== kb) {
    throw new ShapeError(`matmul: inner dimensions differ: ${fmt(a.shape)}${transA ? 'ᵀ' : ''} · ${fmt(b.shape)}${transB ? 'ᵀ' : ''}`);
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const batchShape = broadcastShapes('matmul', aBatch, bBatch);
  const batch = sizeOf(batchShape);
  // A batch that is one matrix is read with stride 0; a partially broadcast batch is materialized.
  let A = a, B = b;
  if (sizeOf(aBatch) !== 1 && !sameShape(aBatch, batchShape)) A = expand(a, [...batchShape, ar, ac]);
  if (sizeOf(bBatch) !== 1 && !sameShape(bBatch, batchShape)) B = expand(b, [...batchShape, br, bc]);
  const aStride = sizeOf(A.shape.slice(0, -2)) === 1 ? 0 : m * k;
  const bStride = sizeOf(B.shape.slice(0, -2)) === 1 ? 0 : k * n;
  const data = backend().matmul(A.storage('matmul'), B.storage('matmul'), batch, m, n, k, transA, transB, aStride, bStride);
  const outShape = [...batchShape, m, n];
  const inputs = [A, B];
  return recordOp('matmul', data, outShape, inputs, (g) => GRADIENTS.matmul(g, A, B, transA, transB, aStride, bStride, batch, m, n, k));
}

/** y = x · wᵀ + b with w [out, in] as torch.nn.Linear stores it; x [..., in]. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  if (w.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== w.shape[1]) {
    throw new ShapeError(`linear: input ${fmt(x.shape)} does not match weight ${fmt(w.shape)} ([out, in])`);
  }
  if (b && (b.ndim !== 1 || b.shape[0] !== w.shape[0])) {
    throw new ShapeError(`linear: bias ${fmt(b.shape)} does not match weight ${fmt(w.shape)}`);
  }
  const lead = x.shape.slice(0, -1);
  const x2 = reshape(x, [sizeOf(lead), w.shape[1]]);
  let y = matmul(x2, w, { transB: true });
  if (b) y = add(y, b);
  return reshape(y, [...lead, w.shape[0]]);
}

// ---------------------------------------------------------------- convolution and resampling

export interface Conv2dOptions { stride?: number | [number, number]; padding?: number | [number, number] }

/** torch.nn.functional.conv2d: x [N, C, H, W], w [O, C, kh, kw], bias [O]. */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const g = conv2dGeometry('conv2d', x, w, bias, opts);
  const xd = x.storage('conv2d'), wd = w.storage('conv2d');
  const data = backend().conv2d(xd, wd, bias ? bias.storage('conv2d') : null, g);
  const inputs = bias ? [x, w, bias] : [x, w];
  return recordOp('conv2d', data, [g.n, g.o, g.oh, g.ow], inputs, (gy) => GRADIENTS.conv2d(gy, x, w, bias ?? null, g));
}

// ---------------------------------------------------------------- lookup, dropout, losses

/** table[idx]: idx int32 of any shape, table [rows, D] → [...idx.shape, D]. */
export function embedding(idx: Tensor, table: Tensor): Tensor {
  if (idx.dtype !== 'int32') throw new TypeError(`embedding: indices must be int32, got ${idx.dtype} ${fmt(idx.shape)}`);
  if (table.ndim !== 2) throw new ShapeError(`embedding: table must be [rows, D], got ${fmt(table.shape)}`);
  const [rows, d] = table.shape;
  const id = idx.data as Int32Array;
  for (let i = 0; i < id.length; i++) {
    if (id[i] < 0 || id[i] >= rows) throw new RangeError(`embedding: index ${id[i]} is out of range for a table of ${rows} rows`);
  }
  return recordOp('embedding', backend().gatherRows(table.storage('embedding'), id, d), [...idx.shape, d], [table], (g) => [
    GRADIENTS.gatherRows(g, id, rows, d),
  ]);
}

/** Inverted dropout: zeroes with probability p and scales the rest by 1/(1−p); identity when not training. */
export function dropout(x: Tensor, p: number, training = true, gen: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: probability ${p} must be in [0, 1)`);
  if (!training || p === 0) return x;
  const mask = new Float32Array(x.size);
  const keep = 1 / (1 - p);
  for (let i = 0; i < mask.length; i++) mask[i] = gen.uniform() >= p ? keep : 0;
  return mul(x, new Tensor(mask, x.shape));
}

/** Mean squared error (mean over all elements), as F.mse_loss. */
export function mseLoss(pred: Tensor, target: Tensor): Tensor {
  if (!sameShape(pred.shape, target.shape)) throw new ShapeError(`mseLoss: prediction ${fmt(pred.shape)} and target ${fmt(target.shape)} differ`);
  checkNonEmpty('mseLoss', pred);
  const d = sub(pred, target);
  return mean(mul(d, d));
}


// ---------------------------------------------------------------- in place

/**
 * dst ← src, in place and outside any graph (optimizer and EMA state, parameters after an update): one strided
 * copy into dst's own storage. src may broadcast to dst's shape. Returns dst.
 */
export function assign(dst: Tensor, src: Tensor): Tensor {
  const outShape = broadcastShapes('assign', src.shape, dst.shape);
  if (!sameShape(outShape, dst.shape)) throw new ShapeError(`assign: cannot write ${fmt(src.shape)} into ${fmt(dst.shape)}`);
  if (dst.node) throw new Error(`assign: ${fmt(dst.shape)} is part of a graph`);
  const d = dst.storage('assign');
  copyKernel(src.storage('assign'), 0, broadcastStrides(src.shape, dst.shape), dst.shape, d, 0, stridesOf(dst.shape));
  return dst;
}
