/**
 * The gradient rule of every primitive, in one table: each turns the output's gradient `g` into the inputs'
 * gradients with engine ops (backward runs under noGrad, so rules record nothing). Composites
 * (./composites.ts) need no rules of their own: autograd runs through their primitives; a fused kernel
 * brings its own backward kernel.
 */
import type { BinaryOp, UnaryOp } from '../backends/backend.js';
import type { Conv2dGeometry } from '../backends/backend.js';
import {
  add, affine, cos, div, eq, exp, expand, gt, log, lt, matmul, mul, neg, pow, reshape, sin, square, sub, sum, sumTo, where,
} from './ops.js';
import { Tensor, backend, scalar } from './tensor.js';

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** d op(x): g → g·op'(x), from the input x and the output y. */
export const UNARY_GRADIENTS: Record<UnaryOp, (g: Tensor, x: Tensor, y: Tensor) => Tensor> = {
  neg: (g) => neg(g),
  exp: (g, _x, y) => mul(g, y),
  log: (g, x) => div(g, x),
  sqrt: (g, _x, y) => div(affine(g, 0.5), y),
  rsqrt: (g, x, y) => mul(g, affine(div(y, x), -0.5)),
  sin: (g, x) => mul(g, cos(x)),
  cos: (g, x) => neg(mul(g, sin(x))),
  tanh: (g, _x, y) => mul(g, affine(square(y), -1, 1)),
  relu: (g, x) => mul(g, gt(x, 0)),
  abs: (g, x) => mul(g, sub(gt(x, 0), lt(x, 0))),
  square: (g, x) => mul(g, affine(x, 2)),
  reciprocal: (g, _x, y) => neg(mul(g, square(y))),
  erf: (g, x) => mul(g, affine(exp(neg(square(x))), TWO_OVER_SQRT_PI)),
};

/**
 * Which operands each unary rule reads (x: the input, y: the output); the op's closure holds only those, so
 * the others are not kept alive by the graph. A rule is called with null for an operand it does not read.
 */
export const UNARY_READS: Record<UnaryOp, { x: boolean; y: boolean }> = {
  neg: { x: false, y: false }, exp: { x: false, y: true }, log: { x: true, y: false }, sqrt: { x: false, y: true },
  rsqrt: { x: true, y: true }, sin: { x: true, y: false }, cos: { x: true, y: false }, tanh: { x: false, y: true },
  relu: { x: true, y: false }, abs: { x: true, y: false }, square: { x: true, y: false }, reciprocal: { x: false, y: true },
  erf: { x: true, y: false },
};

/** Gradients of a op b before they are summed back over broadcast axes (null: not differentiable there). */
type BinaryRule = (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor | null, Tensor | null];

/** Which operands each binary rule reads (ab: both inputs, out: the output); as UNARY_READS. */
export const BINARY_READS: Record<BinaryOp, { ab: boolean; out: boolean }> = {
  add: { ab: false, out: false }, sub: { ab: false, out: false }, mul: { ab: true, out: false }, div: { ab: true, out: true },
  pow: { ab: true, out: true }, maximum: { ab: true, out: false }, minimum: { ab: true, out: false },
  eq: { ab: false, out: false }, gt: { ab: false, out: false }, lt: { ab: false, out: false },
};

/** Where a and b tie, the gradient is split equally between them, as PyTorch does. */
const tieShare = (win: Tensor, a: Tensor, b: Tensor) => add(win, affine(eq(a, b), 0.5));

export const BINARY_GRADIENTS: Record<BinaryOp, BinaryRule | null> = {
  add: (g) => [g, g],
  sub: (g) => [g, neg(g)],
  mul: (g, a, b) => [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null],
  div: (g, a, b, out) => [a.requiresGrad ? div(g, b) : null, b.requiresGrad ? neg(div(mul(g, out), b)) : null],
  pow: (g, a, b, out) => [
    a.requiresGrad ? mul(mul(g, b), pow(a, affine(b, 1, -1))) : null,
    b.requiresGrad ? mul(mul(g, out), log(a)) : null,
  ],
  maximum: (g, a, b) => { const wa = tieShare(gt(a, b), a, b); return [mul(g, wa), mul(g, affine(wa, -1, 1))]; },
  minimum: (g, a, b) => { const wa = tieShare(lt(a, b), a, b); return [mul(g, wa), mul(g, affine(wa, -1, 1))]; },
  eq: null,
  gt: null,
  lt: null,
};

/** The other primitives' rules. */
/** A convolution's bias gradient: dy [n, o, oh, ow] summed over batch and pixels. */
export function conv2dBiasGrad(gy: Tensor, geo: Conv2dGeometry): Tensor {
  const be = backend(), ohw = geo.oh * geo.ow, perBatch = be.reduce('sum', gy.storage('conv2d'), 1, geo.n, geo.o * ohw);
  return new Tensor(be.reduce('sum', perBatch, geo.o, ohw, 1), [geo.o]);
}

export const GRADIENTS = {
  affine: (g: Tensor, scale: number) => (scale === 1 ? g : affine(g, scale, 0)),
  powScalar: (g: Tensor, x: Tensor, p: number) =>
    (p === 0 ? affine(g, 0) : affine(mul(g, new Tensor(backend().powScalar(x.storage('pow'), p - 1), x.shape)), p)),
  /** Passes where lo ≤ x ≤ hi (PyTorch's convention at the boundaries). */
  clamp: (g: Tensor, x: Tensor, lo: number, hi: number) => mul(g, mul(affine(lt(x, lo), -1, 1), affine(gt(x, hi), -1, 1))),
  where: (g: Tensor, cond: Tensor, a: Tensor, b: Tensor): [Tensor | null, Tensor | null] => {
    const z = scalar(0);
    return [a.requiresGrad ? sumTo(where(cond, g, z), a.shape) : null, b.requiresGrad ? sumTo(where(cond, z, g), b.shape) : null];
  },
  /** Sum over axes: the gradient broadcast back. */
  sum: (g: Tensor, xShape: readonly number[], keptShape: number[]) => expand(reshape(g, keptShape), xShape),
  /** Max over axes: shared equally among tied maxima. */
  max: (g: Tensor, x: Tensor, out: Tensor, axes: number[], keptShape: number[]) => {
    const mask = eq(x, reshape(out, keptShape));
    return mul(mask, div(reshape(g, keptShape), sum(mask, axes, true)));
  },
  /** out = opA(A)·opB(B), batched (stride 0: one matrix shared by the batch). */
  matmul: (g: Tensor, A: Tensor, B: Tensor, transA: boolean, transB: boolean, aStride: number, bStride: number,
    batch: number, m: number, n: number, k: number): [Tensor | null, Tensor | null] => {
    let gA: Tensor | null = null, gB: Tensor | null = null;
    if (A.requiresGrad) {
      // dA = g · opB(B)ᵀ, laid out as A is stored (transposed back when transA).
      gA = transA ? matmul(B, g, { transA: transB, transB: true }) : matmul(g, B, { transB: !transB });
      gA = sumTo(gA, A.shape);
    }
    if (B.requiresGrad) {
      if (bStride === 0 && aStride !== 0 && !transA && !transB) {
        // One shared B (a linear layer over a batch): one GEMM over the flattened batch.
        gB = matmul(reshape(A, [batch * m, k]), reshape(g, [batch * m, n]), { transA: true });
      } else {
        gB = transB ? matmul(g, A, { transA: true, transB: transA }) : matmul(A, g, { transA: !transA });
        gB = sumTo(gB, B.shape);
      }
      gB = reshape(gB, B.shape);
    }
    return [gA, gB];
  },
  /** conv2d: the two transposed convolutions, and the bias gradient as sums over batch and pixels. */
  conv2d: (gy: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): (Tensor | null)[] => {
    const be = backend(), gd = gy.storage('conv2d');
    const dx = x.requiresGrad ? new Tensor(be.conv2dBackwardInput(gd, w.storage('conv2d'), geo), x.shape) : null;
    const dw = w.requiresGrad ? new Tensor(be.conv2dBackwardWeight(x.storage('conv2d'), gd, geo), w.shape) : null;
    const db = bias?.requiresGrad ? conv2dBiasGrad(gy, geo) : null;
    return bias ? [dx, dw, db] : [dx, dw];
  },
  /** Rows gathered from a table: scattered back, summing repeats. */
  gatherRows: (g: Tensor, idx: Int32Array, rows: number, d: number) =>
    new Tensor(backend().scatterAddRows(g.storage('embedding'), idx, rows, d), [rows, d]),
};
