/**
 * Gradient check: for each differentiable op, on tiny shapes, the autograd gradient of
 * L = Σ out ⊙ w (w random, fixed) is compared with central finite differences
 *
 *   dL/dx_i ≈ (L(x + δ e_i) − L(x − δ e_i)) / (x_i⁺ − x_i⁻)      (δ = 1e-3 · max(1, |x_i|))
 *
 * where x_i± are the float32-rounded perturbed values actually used (so rounding of the step does not
 * count as error) and L is accumulated in doubles from the op's float32 output. Runs on the `js`
 * (reference) backend; other backends are held to the js results by test/parity.test.ts.
 *
 * Tolerance: per input, max|autograd − fd| / max(max|fd|, 1e-3) ≤ 2e-3 (the worst error against the
 * gradient's own scale). Inputs of ops with kinks (relu, abs, clamp, max, maximum, …) are kept well
 * away from the kinks, so the finite difference never straddles one.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import * as D from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { normalizedMaxError, normals, rng, worstElement } from './helpers/compare.js';

const DELTA = 1e-3;
const TOL = 2e-3;

interface Input { shape: number[]; data: Float32Array | Int32Array; grad?: boolean }
type Inputs = Record<string, Input>;
interface Case { name: string; inputs: (r: () => number) => Inputs; f: (x: Record<string, Tensor>) => Tensor | Tensor[] }

// ------------------------------------------------------------------------------------------------ input makers

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const N = (...shape: number[]) => (r: () => number): Input => ({ shape, data: normals(r, size(shape)) });
/** Uniform in [lo, hi). */
const U = (lo: number, hi: number, ...shape: number[]) => (r: () => number): Input => {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * r();
  return { shape, data };
};
/** Normal values pushed at least `gap` away from every point in `kinks`. */
const away = (kinks: number[], gap: number, ...shape: number[]) => (r: () => number): Input => {
  const data = normals(r, size(shape));
  for (let i = 0; i < data.length; i++) {
    for (const k of kinks) {
      if (Math.abs(data[i] - k) < gap) data[i] = k + (data[i] >= k ? gap : -gap) * (1 + r());
    }
  }
  return { shape, data };
};
/** Distinct values (spacing ≥ gap) in random order: no ties for max. */
const distinct = (gap: number, ...shape: number[]) => (r: () => number): Input => {
  const n = size(shape);
  const vals = Array.from({ length: n }, (_, i) => (i - n / 2) * gap + r() * gap * 0.3);
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [vals[i], vals[j]] = [vals[j], vals[i]]; }
  return { shape, data: Float32Array.from(vals) };
};
const ints = (rows: number, ...shape: number[]) => (r: () => number): Input =>
  ({ shape, data: Int32Array.from({ length: size(shape) }, () => Math.floor(r() * rows)), grad: false });
const mask = (...shape: number[]) => (r: () => number): Input =>
  ({ shape, data: Float32Array.from({ length: size(shape) }, () => (r() < 0.5 ? 1 : 0)), grad: false });

function ins(spec: Record<string, (r: () => number) => Input>): (r: () => number) => Inputs {
  return (r) => Object.fromEntries(Object.entries(spec).map(([k, mk]) => [k, mk(r)]));
}

// ------------------------------------------------------------------------------------------------ cases

const CASES: Case[] = [];
const add = (name: string, inputs: Record<string, (r: () => number) => Input>, f: Case['f']) =>
  CASES.push({ name, inputs: ins(inputs), f });

// unary
add('neg', { x: N(2, 3) }, (x) => D.neg(x.x));
add('exp', { x: N(2, 3) }, (x) => D.exp(x.x));
add('log', { x: U(0.3, 2, 2, 3) }, (x) => D.log(x.x));
add('sqrt', { x: U(0.3, 2, 2, 3) }, (x) => D.sqrt(x.x));
add('rsqrt', { x: U(0.3, 2, 2, 3) }, (x) => D.rsqrt(x.x));
add('sin', { x: N(2, 3) }, (x) => D.sin(x.x));
add('cos', { x: N(2, 3) }, (x) => D.cos(x.x));
add('tanh', { x: N(2, 3) }, (x) => D.tanh(x.x));
add('sigmoid', { x: N(2, 3) }, (x) => D.sigmoid(x.x));
add('silu', { x: N(2, 3) }, (x) => D.silu(x.x));
add('gelu', { x: N(2, 3) }, (x) => D.gelu(x.x));
add('relu', { x: away([0], 0.05, 2, 3) }, (x) => D.relu(x.x));
add('abs', { x: away([0], 0.05, 2, 3) }, (x) => D.abs(x.x));
add('square', { x: N(2, 3) }, (x) => D.square(x.x));
add('reciprocal', { x: away([0], 0.4, 2, 3) }, (x) => D.reciprocal(x.x));
add('affine', { x: N(2, 3) }, (x) => D.affine(x.x, 1.5, -0.25));
add('clamp', { x: away([-0.5, 0.5], 0.05, 3, 4) }, (x) => D.clamp(x.x, -0.5, 0.5));
add('clamp min only', { x: away([0.1], 0.05, 3, 4) }, (x) => D.clamp(x.x, 0.1));

// binary with broadcasting, and with plain numbers
add('add bcast', { a: N(2, 3, 2), b: N(3, 1) }, (x) => D.add(x.a, x.b));
add('sub bcast', { a: N(2, 3, 2), b: N(2) }, (x) => D.sub(x.a, x.b));
add('mul bcast', { a: N(2, 1, 2), b: N(3, 1) }, (x) => D.mul(x.a, x.b));
add('div bcast', { a: N(2, 3, 2), b: away([0], 0.5, 3, 1) }, (x) => D.div(x.a, x.b));
add('pow tensor^tensor', { a: U(0.5, 2, 2, 3), b: N(3) }, (x) => D.pow(x.a, x.b));
add('pow x^3', { x: N(2, 3) }, (x) => D.pow(x.x, 3));
add('pow x^0.5', { x: U(0.3, 2, 2, 3) }, (x) => D.pow(x.x, 0.5));
add('pow 2.5^x', { x: N(2, 3) }, (x) => D.pow(2.5, x.x));
add('number - x', { x: N(2, 3) }, (x) => D.sub(2, x.x));
add('number / x', { x: away([0], 0.5, 2, 3) }, (x) => D.div(2, x.x));
add('x * number + number', { x: N(2, 3) }, (x) => D.add(D.mul(x.x, -3), 1));
// b = a ± (0.1 … 0.6): never tied, never within the finite-difference step
const separated = (...shape: number[]) => (r: () => number): Inputs => {
  const a = normals(r, size(shape));
  const b = a.map((v) => v + (r() < 0.5 ? -1 : 1) * (0.1 + 0.5 * r()));
  return { a: { shape, data: a }, b: { shape, data: b } };
};
CASES.push({ name: 'maximum', inputs: separated(2, 3), f: (x) => D.maximum(x.a, x.b) });
CASES.push({ name: 'minimum', inputs: separated(2, 3), f: (x) => D.minimum(x.a, x.b) });
add('where bcast', { cond: mask(3, 1), a: N(2, 3, 2), b: N(3, 2) }, (x) => D.where(x.cond, x.a, x.b));

// reductions
add('sum axis', { x: N(2, 3, 4) }, (x) => D.sum(x.x, 1));
add('sum axes keepDim', { x: N(2, 3, 4) }, (x) => D.sum(x.x, [0, 2], true));
add('sum all', { x: N(2, 3) }, (x) => D.sum(x.x));
add('mean axis', { x: N(2, 3, 4) }, (x) => D.mean(x.x, -1));
add('mean all keepDim', { x: N(2, 3) }, (x) => D.mean(x.x, undefined, true));
add('max axis', { x: distinct(0.05, 2, 3, 4) }, (x) => D.max(x.x, 1));
add('max axes', { x: distinct(0.05, 2, 3, 4) }, (x) => D.max(x.x, [0, 2], true));
add('max all', { x: distinct(0.05, 3, 4) }, (x) => D.max(x.x));

// shape and movement
add('reshape', { x: N(2, 3, 2) }, (x) => D.mul(D.reshape(x.x, [3, -1]), 1));
add('flatten', { x: N(2, 3, 2) }, (x) => D.flatten(x.x, 1));
add('permute', { x: N(2, 3, 4) }, (x) => D.permute(x.x, [2, 0, 1]));
add('transpose', { x: N(2, 3, 4) }, (x) => D.transpose(x.x, 0, 2));
add('expand', { x: N(3, 1) }, (x) => D.expand(x.x, [2, 3, 4]));
add('slice', { x: N(4, 5) }, (x) => D.slice(x.x, [1, 2], [3, 5]));
add('narrow', { x: N(3, 4) }, (x) => D.narrow(x.x, 1, 1, 2));
add('concat', { a: N(2, 3), b: N(2, 2) }, (x) => D.concat([x.a, x.b], 1));
add('split', { x: N(2, 5) }, (x) => D.split(x.x, [2, 3], 1));
add('stack', { a: N(2, 3), b: N(2, 3) }, (x) => D.stack([x.a, x.b], 1));
add('pad', { x: N(1, 2, 3, 3) }, (x) => D.pad(x.x, [1, 2, 2, 0]));

// products
add('matmul', { a: N(3, 4), b: N(4, 2) }, (x) => D.matmul(x.a, x.b));
add('matmul batched bcast', { a: N(2, 1, 3, 2), b: N(3, 2, 2) }, (x) => D.matmul(x.a, x.b));
add('matmul transA transB', { a: N(2, 4, 3), b: N(2, 2, 4) }, (x) => D.matmul(x.a, x.b, { transA: true, transB: true }));
add('matmul transB, 2-D b', { a: N(2, 3, 4), b: N(5, 4) }, (x) => D.matmul(x.a, x.b, { transB: true }));
add('linear', { x: N(2, 3, 4), w: N(5, 4), b: N(5) }, (x) => D.linear(x.x, x.w, x.b));

// convolution and resampling
add('conv2d 3x3 stride 2 pad 1', { x: N(2, 2, 5, 4), w: N(3, 2, 3, 3), b: N(3) },
  (x) => D.conv2d(x.x, x.w, x.b, { stride: 2, padding: 1 }));
add('conv2d 1x1', { x: N(1, 3, 3, 2), w: N(2, 3, 1, 1) }, (x) => D.conv2d(x.x, x.w));
add('conv2d 5x5 pad 2', { x: N(1, 2, 4, 5), w: N(2, 2, 5, 5), b: N(2) }, (x) => D.conv2d(x.x, x.w, x.b, { padding: 2 }));
add('conv2d asymmetric stride/pad', { x: N(1, 2, 5, 6), w: N(2, 2, 3, 2) },
  (x) => D.conv2d(x.x, x.w, null, { stride: [1, 2], padding: [0, 1] }));
add('upsampleNearest2x', { x: N(1, 2, 2, 3) }, (x) => D.upsampleNearest2x(x.x));
add('avgPool2x2', { x: N(1, 2, 4, 2) }, (x) => D.avgPool2x2(x.x));

// normalization
add('groupNorm affine', { x: N(2, 4, 2, 3), gamma: N(4), beta: N(4) }, (x) => D.groupNorm(x.x, 2, x.gamma, x.beta));
add('groupNorm fused silu', { x: N(2, 4, 3), gamma: N(4), beta: N(4) },
  (x) => D.groupNorm(x.x, 2, x.gamma, x.beta, { silu: true }));
add('groupNorm no affine, G = C', { x: N(2, 3, 4) }, (x) => D.groupNorm(x.x, 3));
add('layerNorm', { x: N(3, 5), gamma: N(5), beta: N(5) }, (x) => D.layerNorm(x.x, x.gamma, x.beta));
add('layerNorm no affine', { x: N(2, 2, 4) }, (x) => D.layerNorm(x.x));

// softmax and attention
add('softmax axis 1', { x: N(2, 4, 3) }, (x) => D.softmax(x.x, 1));
add('logSoftmax', { x: N(3, 4) }, (x) => D.logSoftmax(x.x));
add('scaledDotProductAttention', { q: N(1, 2, 3, 4), k: N(1, 2, 5, 4), v: N(1, 2, 5, 3) },
  (x) => D.scaledDotProductAttention(x.q, x.k, x.v));

// lookup, dropout, losses
add('embedding', { idx: ints(4, 2, 3), table: N(4, 3) }, (x) => D.embedding(x.idx, x.table));
add('dropout (fixed generator)', { x: N(3, 4) }, (x) => D.dropout(x.x, 0.3, true, new D.Generator(7)));
add('mseLoss', { pred: N(2, 3), target: N(2, 3) }, (x) => D.mseLoss(x.pred, x.target));

// ------------------------------------------------------------------------------------------------ runner

function toTensors(inputs: Inputs, requiresGrad: boolean): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k,
    v.data instanceof Int32Array
      ? D.tensor(v.data, v.shape, { dtype: 'int32' })
      : D.tensor(v.data, v.shape, { requiresGrad: requiresGrad && v.grad !== false })]));
}

const asList = (o: Tensor | Tensor[]) => (Array.isArray(o) ? o : [o]);

describe('gradcheck (js backend, central differences)', () => {
  CASES.forEach((c, ci) => {
    test(c.name, (t) => {
      D.setBackend('js');
      const r = rng(1000 + ci);
      const inputs = c.inputs(r);
      // autograd
      const leaves = toTensors(inputs, true);
      const outs = asList(c.f(leaves));
      const weights = outs.map((o) => normals(r, o.size));
      outs.forEach((o, i) => o.backward(D.tensor(weights[i], o.shape)));

      // finite differences, on the same data arrays (inputs are shared by reference and perturbed in place)
      const loss = (): number => D.noGrad(() => {
        let l = 0;
        asList(c.f(toTensors(inputs, false))).forEach((o, i) => {
          const d = o.data, w = weights[i];
          for (let j = 0; j < d.length; j++) l += d[j] * w[j];
        });
        return l;
      });
      const problems: string[] = [];
      let worst = 0;
      for (const [name, inp] of Object.entries(inputs)) {
        if (inp.grad === false || inp.data instanceof Int32Array) continue;
        const data = inp.data;
        const fd = new Float64Array(data.length);
        for (let i = 0; i < data.length; i++) {
          const x0 = data[i];
          data[i] = x0 + DELTA * Math.max(1, Math.abs(x0));
          const xp = data[i], lp = loss();
          data[i] = x0 - DELTA * Math.max(1, Math.abs(x0));
          const xm = data[i], lm = loss();
          data[i] = x0;
          fd[i] = (lp - lm) / (xp - xm);
        }
        const g = leaves[name].grad;
        if (!g) { problems.push(`${name}: no gradient`); continue; }
        const ag = g.toArray();
        const err = normalizedMaxError(ag, fd, 1e-3);
        worst = Math.max(worst, err);
        if (!(err <= TOL)) problems.push(`${name}: error ${err.toExponential(2)} > ${TOL} (${worstElement(ag, fd)})`);
      }
      t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
      assert.ok(problems.length === 0, `gradcheck ${c.name}:\n  ${problems.join('\n  ')}`);
    });
  });
});
