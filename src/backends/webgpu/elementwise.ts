/**
 * Elementwise, broadcasting, reduction, resampling, indexing and optimizer kernels: one thread per output
 * element, 256 per workgroup, 2-D grids past 65,535 workgroups.
 */
import type { ActivationOp, Backend, BinaryOp, FStore, UnaryOp } from '../backend.js';
import type { Helpers } from './base.js';
import type { Runtime } from './runtime.js';
import { FLAT, GID, WG, grid } from './wgsl.js';

const UNARY: Record<UnaryOp, string> = {
  neg: '-x', exp: 'exp(x)', log: 'log(x)', sqrt: 'sqrt(x)', rsqrt: '1.0 / sqrt(x)', sin: 'sin(x)', cos: 'cos(x)',
  tanh: 'tanh_(x)', relu: 'select(0.0, x, x > 0.0)', abs: 'abs(x)', square: 'x * x', reciprocal: '1.0 / x', erf: 'erf_(x)',
};

/** The fused activations and their derivatives. */
const ACTIVATION: Record<ActivationOp, string> = {
  sigmoid: 'sigm(x)', silu: 'x * sigm(x)', gelu: '0.5 * x * (1.0 + erf_(x * 0.70710678118654752))',
};
const ACTIVATION_D: Record<ActivationOp, string> = {
  sigmoid: 'sigm(x) * (1.0 - sigm(x))', silu: 'sigm(x) * (1.0 + x * (1.0 - sigm(x)))',
  gelu: '0.5 * (1.0 + erf_(x * 0.70710678118654752)) + x * 0.3989422804014327 * exp(-0.5 * x * x)',
};

const BINARY: Record<BinaryOp, string> = {
  add: 'a + b', sub: 'a - b', mul: 'a * b', div: 'a / b', pow: 'powf(a, b)',
  maximum: 'select(b, a, a >= b || a != a)', minimum: 'select(b, a, a <= b || a != a)',
  eq: 'select(0.0, 1.0, a == b)', gt: 'select(0.0, 1.0, a > b)', lt: 'select(0.0, 1.0, a < b)',
};

type ElementwiseKernels = Pick<Required<Backend<FStore>>, 'unary' | 'activation' | 'activationBackward' | 'binary' | 'where' | 'affine'
  | 'powScalar' | 'clamp' | 'reduce' | 'stridedCopy' | 'upsampleNearest2x' | 'avgPool2x2' | 'gatherRows' | 'scatterAddRows' | 'adamW'
  | 'lerpInPlace'>;

export function elementwiseKernels(rt: Runtime, h: Helpers): ElementwiseKernels {
  const { arr, touch, ew, runEw, broadcastOp, reduceRaw } = h;
  return {
    unary(op: UnaryOp, x: FStore): FStore {
      const a = arr(x);
      return runEw(ew(`u:${op}`, 1, UNARY[op], [], 'let x = x0[i];'), a.length, [], [a]);
    },
    activation(op: ActivationOp, x: FStore): FStore {
      const a = arr(x);
      return runEw(ew(`act:${op}`, 1, ACTIVATION[op], [], 'let x = x0[i];'), a.length, [], [a]);
    },
    activationBackward(op: ActivationOp, x: FStore, dy: FStore): FStore {
      const a = arr(x);
      return runEw(ew(`actd:${op}`, 2, `x1[i] * (${ACTIVATION_D[op]})`, [], 'let x = x0[i];'), a.length, [], [a, arr(dy)]);
    },
    binary(op: BinaryOp, a: FStore, aStrides: number[], b: FStore, bStrides: number[], outShape: number[]): FStore {
      return broadcastOp(`b:${op}`, `let a = x0[o0]; let b = x1[o1]; out[i] = ${BINARY[op]};`, [a, b], [aStrides, bStrides], outShape);
    },
    where(cond, cStrides, a, aStrides, b, bStrides, outShape): FStore {
      return broadcastOp('where', 'out[i] = select(x2[o2], x1[o1], x0[o0] != 0.0);', [cond, a, b], [cStrides, aStrides, bStrides], outShape);
    },
    affine(x, scale, shift): FStore {
      const a = arr(x);
      return runEw(ew('affine', 1, 'x0[i] * P.scale + P.shift', [['scale', 'f32'], ['shift', 'f32']]), a.length, [scale, shift], [a]);
    },
    powScalar(x, p): FStore {
      const a = arr(x);
      return runEw(ew('powScalar', 1, 'powf(x0[i], P.p)', [['p', 'f32']]), a.length, [p], [a]);
    },
    clamp(x, lo, hi): FStore {
      const a = arr(x);
      // ±Infinity as the largest float: WGSL has no infinite literals.
      const f = (v: number) => (v === Infinity ? 3.4028234663852886e38 : v === -Infinity ? -3.4028234663852886e38 : v);
      return runEw(ew('clamp', 1, 'min(max(x0[i], P.lo), P.hi)', [['lo', 'f32'], ['hi', 'f32']]), a.length, [f(lo), f(hi)], [a]);
    },
    reduce(op, x, outer, size, inner): FStore {
      return reduceRaw(op, arr(x), outer, size, inner);
    },
    upsampleNearest2x(x, planes, h, w): FStore {
      const a = arr(x);
      return runEw(ew('up2', 1, 'x0[(p * P.h + (r >> 1u)) * P.w + (c >> 1u)]', [['h', 'u32'], ['w', 'u32']],
        'let w2 = 2u * P.w; let c = i % w2; let pr = i / w2; let r = pr % (2u * P.h); let p = pr / (2u * P.h);'),
      planes * 4 * h * w, [h, w], [a]);
    },
    avgPool2x2(x, planes, h, w): FStore {
      const a = arr(x);
      return runEw(ew('pool2', 1, '0.25 * (x0[r0] + x0[r0 + 1u] + x0[r0 + P.w] + x0[r0 + P.w + 1u])', [['h', 'u32'], ['w', 'u32']],
        'let w2 = P.w / 2u; let h2 = P.h / 2u; let c = i % w2; let pr = i / w2; let r = pr % h2; let p = pr / h2; let r0 = (p * P.h + 2u * r) * P.w + 2u * c;'),
      planes * (h >> 1) * (w >> 1), [h, w], [a]);
    },
    gatherRows(table, idx, d): FStore {
      const ia = rt.upload(idx);
      const k = rt.kernel('gather', [['n', 'u32'], ['d', 'u32']], () => `
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  out[i] = table[u32(idx[i / P.d]) * P.d + i % P.d];
}`);
      const out = rt.alloc(idx.length * d);
      if (out.length) rt.dispatch(k, [out.length, d], [arr(table), ia, out], grid(Math.ceil(out.length / WG)));
      ia.release();
      return out;
    },
    scatterAddRows(dy, idx, rows, d): FStore {
      const ia = rt.upload(idx);
      const k = rt.kernel('scatterAdd', [['n', 'u32'], ['d', 'u32'], ['m', 'u32']], () => `
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  let r = i32(i / P.d); let j = i % P.d;
  var s = 0.0;
  for (var q = 0u; q < P.m; q++) { if (idx[q] == r) { s += dy[q * P.d + j]; } }
  out[i] = s;
}`);
      const out = rt.alloc(rows * d);
      if (out.length) rt.dispatch(k, [out.length, d, idx.length], [arr(dy), ia, out], grid(Math.ceil(out.length / WG)));
      ia.release();
      return out;
    },
    adamW(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step): void {
      const pa = arr(p), ma = arr(m), va = arr(v);
      touch(pa); touch(ma); touch(va);
      // 1 − β is computed here in float64 and passed as such: in float32, 1 − f32(0.999) is off by 1.3e-5.
      const k = rt.kernel('adamW', [['n', 'u32'], ['lr', 'f32'], ['b1', 'f32'], ['b2', 'f32'], ['eps', 'f32'], ['wd', 'f32'], ['bc1', 'f32'], ['bc2', 'f32'], ['c1', 'f32'], ['c2', 'f32']], () => `
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  let gi = g[i];
  var pi = p[i] * (1.0 - P.lr * P.wd);
  let mi = P.b1 * m[i] + P.c1 * gi;
  let vi = P.b2 * v[i] + P.c2 * gi * gi;
  m[i] = mi; v[i] = vi;
  pi -= (P.lr * (mi / P.bc1)) / (sqrt(vi / P.bc2) + P.eps);
  p[i] = pi;
}`);
      const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
      if (pa.length) rt.dispatch(k, [pa.length, lr, beta1, beta2, eps, weightDecay, bc1, bc2, 1 - beta1, 1 - beta2], [pa, arr(g), ma, va], grid(Math.ceil(pa.length / WG)));
    },
    stridedCopy: h.stridedCopy,
    lerpInPlace: (s, v, a) => {
      const sa = arr(s);
      touch(sa);
      const k = rt.kernel('lerp', [['n', 'u32'], ['a', 'f32']], () => `
@group(0) @binding(1) var<storage, read_write> s: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  s[i] += P.a * (v[i] - s[i]);
}`);
      if (sa.length) rt.dispatch(k, [sa.length, a], [sa, arr(v)], grid(Math.ceil(sa.length / WG)));
    },
  };
}
