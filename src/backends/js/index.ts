/**
 * The reference backend: plain TypeScript loops, arithmetic in JS doubles, results rounded to float32.
 * Clarity over speed — every other backend is tested against this one — except matmul and the convolutions,
 * which run as packed GEMMs (./conv.ts, ./gemm.ts) summing the same terms in the same order: same results, ~6× faster.
 *
 * Every primitive, and the fused kernels whose composites cost the most here (the norms, softmax, AdamW, the EMA
 * update); the activations and resampling run as the engine's composites.
 */
import type { Backend, BinaryOp, Conv2dGeometry, F32, I32, NormGrads, NormResult, ReduceOp, UnaryOp } from '../backend.js';
import { conv2dBackwardInputGemm, conv2dBackwardWeightGemm, conv2dGemm, matmulGemm } from './conv.js';

/** erf to ~1e-15 (W. J. Cody's rational approximations are overkill; this series/continued-fraction pair suffices for f32). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x); // 1 − erf(6) ≈ 2e−17: ±1 in float64 and float32 (and at ±∞)
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)); converges fast for |x| < 2.5.
    let term = x, sum = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Continued fraction for erfc (Lentz), accurate for |x| ≥ 2.5.
  let f = ax, c = ax, d = 0;
  for (let n = 1; n < 80; n++) {
    const an = n / 2;
    d = ax + an * d; d = d === 0 ? 1e-300 : 1 / d;
    c = ax + an / c; if (c === 0) c = 1e-300;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return x < 0 ? erfc - 1 : 1 - erfc;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg': return (x) => -x;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'rsqrt': return (x) => 1 / Math.sqrt(x);
    case 'sin': return Math.sin;
    case 'cos': return Math.cos;
    case 'tanh': return Math.tanh;
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'abs': return Math.abs;
    case 'square': return (x) => x * x;
    case 'reciprocal': return (x) => 1 / x;
    case 'erf': return erf;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    case 'div': return (a, b) => a / b;
    case 'pow': return Math.pow;
    case 'maximum': return (a, b) => (a >= b || Number.isNaN(a) ? a : b);
    case 'minimum': return (a, b) => (a <= b || Number.isNaN(a) ? a : b);
    case 'eq': return (a, b) => (a === b ? 1 : 0);
    case 'gt': return (a, b) => (a > b ? 1 : 0);
    case 'lt': return (a, b) => (a < b ? 1 : 0);
  }
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const contiguousStrides = (shape: number[]) => {
  const st = new Array<number>(shape.length);
  for (let d = shape.length - 1, acc = 1; d >= 0; d--) { st[d] = acc; acc *= shape[d]; }
  return st;
};

/** Calls fn(outIndex, offsets...) for every position of `shape`, walking each operand by its strides. */
function forEachStrided(shape: number[], strides: number[][], offsets: number[], fn: (i: number, offs: number[]) => void): void {
  const nd = shape.length, n = size(shape), k = strides.length;
  const idx = new Array<number>(nd).fill(0);
  const offs = offsets.slice();
  for (let i = 0; i < n; i++) {
    fn(i, offs);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < k; s++) offs[s] += strides[s][d];
      if (idx[d] < shape[d]) break;
      for (let s = 0; s < k; s++) offs[s] -= strides[s][d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** out[o + i] = a[ia + i·sa] op b[ib + i·sb] for i < n: one tight loop per op instead of a call per element. */
type BinaryRun = (out: F32, o: number, a: F32, ia: number, sa: number, b: F32, ib: number, sb: number, n: number) => void;
function binaryRun(op: BinaryOp): BinaryRun {
  switch (op) {
    case 'add': return (out, o, a, ia, sa, b, ib, sb, n) => { for (let i = 0; i < n; i++, ia += sa, ib += sb) out[o + i] = a[ia] + b[ib]; };
    case 'sub': return (out, o, a, ia, sa, b, ib, sb, n) => { for (let i = 0; i < n; i++, ia += sa, ib += sb) out[o + i] = a[ia] - b[ib]; };
    case 'mul': return (out, o, a, ia, sa, b, ib, sb, n) => { for (let i = 0; i < n; i++, ia += sa, ib += sb) out[o + i] = a[ia] * b[ib]; };
    case 'div': return (out, o, a, ia, sa, b, ib, sb, n) => { for (let i = 0; i < n; i++, ia += sa, ib += sb) out[o + i] = a[ia] / b[ib]; };
    default: {
      const f = binaryFn(op);
      return (out, o, a, ia, sa, b, ib, sb, n) => { for (let i = 0; i < n; i++, ia += sa, ib += sb) out[o + i] = f(a[ia], b[ib]); };
    }
  }
}

function normStats(x: F32, base: number, count: number, eps: number): [number, number] {
  let s = 0;
  for (let i = 0; i < count; i++) s += x[base + i];
  const mean = s / count;
  let v = 0;
  for (let i = 0; i < count; i++) { const d = x[base + i] - mean; v += d * d; }
  return [mean, 1 / Math.sqrt(v / count + eps)];
}

export const jsBackend: Backend = {
  name: 'js',
  device: false,

  // ---- storage: typed arrays owned by the garbage collector
  empty: (n) => new Float32Array(n),
  full: (n, value) => new Float32Array(n).fill(value),
  fromHost: (data) => data,

  unary(op: UnaryOp, x: F32): F32 {
    const f = unaryFn(op), y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = f(x[i]);
    return y;
  },

  binary(op: BinaryOp, a: F32, aStrides: number[], b: F32, bStrides: number[], outShape: number[]): F32 {
    const out = new Float32Array(size(outShape));
    if (out.length === 0) return out;
    if (outShape.length === 0) return this.binary(op, a, [0], b, [0], [1]);
    // The engine has merged the dimensions: the innermost one is the longest run, one tight loop each.
    const run = binaryRun(op), so = contiguousStrides(outShape);
    const d = outShape.length - 1, n = outShape[d];
    forEachStrided(outShape.slice(0, d), [so.slice(0, d), aStrides.slice(0, d), bStrides.slice(0, d)], [0, 0, 0],
      (_, o) => run(out, o[0], a, o[1], aStrides[d], b, o[2], bStrides[d], n));
    return out;
  },

  where(cond: F32, cStrides: number[], a: F32, aStrides: number[], b: F32, bStrides: number[], outShape: number[]): F32 {
    const out = new Float32Array(size(outShape));
    forEachStrided(outShape, [cStrides, aStrides, bStrides], [0, 0, 0], (i, o) => {
      out[i] = cond[o[0]] !== 0 ? a[o[1]] : b[o[2]];
    });
    return out;
  },

  affine(x: F32, scale: number, shift: number): F32 {
    const y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = x[i] * scale + shift;
    return y;
  },

  powScalar(x: F32, p: number): F32 {
    const y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = Math.pow(x[i], p);
    return y;
  },

  clamp(x: F32, lo: number, hi: number): F32 {
    const y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = Math.min(Math.max(x[i], lo), hi);
    return y;
  },

  reduce(op: ReduceOp, x: F32, outer: number, n: number, inner: number): F32 {
    const out = new Float32Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let acc = op === 'sum' ? 0 : -Infinity;
        for (let r = 0; r < n; r++) {
          const v = x[base + r * inner];
          if (op === 'sum') acc += v;
          else if (v > acc || Number.isNaN(v)) acc = v;
        }
        out[o * inner + j] = acc;
      }
    }
    return out;
  },

  stridedCopy(src, srcOffset, srcStrides, shape, dst, dstOffset, dstStrides, accumulate): void {
    if (size(shape) === 0) return;
    if (shape.length === 0) { dst[dstOffset] = accumulate ? dst[dstOffset] + src[srcOffset] : src[srcOffset]; return; }
    // Innermost runs as plain loops (accumulation stays sequential, so repeated destinations still sum in order).
    const d = shape.length - 1, n = shape[d], s1 = srcStrides[d], d1 = dstStrides[d];
    forEachStrided(shape.slice(0, d), [srcStrides.slice(0, d), dstStrides.slice(0, d)], [srcOffset, dstOffset], (_, o) => {
      let si = o[0], di = o[1];
      if (accumulate) for (let i = 0; i < n; i++, si += s1, di += d1) dst[di] += src[si];
      else for (let i = 0; i < n; i++, si += s1, di += d1) dst[di] = src[si];
    });
  },

  // The heavy kernels run as packed, register-tiled GEMMs (./conv.ts); same sums, same float64 accumulation.
  matmul(a, b, batch, m, n, k, transA, transB, aBatchStride, bBatchStride): F32 {
    return matmulGemm(a, b, batch, m, n, k, transA, transB, aBatchStride, bBatchStride);
  },

  conv2d(x: F32, w: F32, bias: F32 | null, g: Conv2dGeometry): F32 {
    return conv2dGemm(x, w, bias, g);
  },

  conv2dBackwardInput(dy: F32, w: F32, g: Conv2dGeometry): F32 {
    return conv2dBackwardInputGemm(dy, w, g);
  },

  conv2dBackwardWeight(x: F32, dy: F32, g: Conv2dGeometry): F32 {
    return conv2dBackwardWeightGemm(x, dy, g);
  },

  groupNorm(x, gamma, beta, n, c, hw, groups, eps, silu): NormResult {
    const cg = c / groups, y = new Float32Array(x.length), mean = new Float32Array(n * groups), rstd = new Float32Array(n * groups);
    for (let b = 0; b < n; b++) for (let gi = 0; gi < groups; gi++) {
      const base = (b * c + gi * cg) * hw;
      const [mu, rs] = normStats(x, base, cg * hw, eps);
      mean[b * groups + gi] = mu; rstd[b * groups + gi] = rs;
      for (let ci = 0; ci < cg; ci++) {
        const ch = gi * cg + ci, ga = gamma ? gamma[ch] : 1, be = beta ? beta[ch] : 0;
        for (let i = 0; i < hw; i++) {
          const k = base + ci * hw + i, z = (x[k] - mu) * rs * ga + be;
          y[k] = silu ? z * sigmoid(z) : z;
        }
      }
    }
    return { y, mean, rstd };
  },

  groupNormBackward(dy, x, gamma, beta, mean, rstd, n, c, hw, groups, silu): NormGrads {
    const cg = c / groups, m = cg * hw;
    const dx = new Float32Array(x.length);
    const dgamma = gamma ? new Float64Array(c) : null, dbeta = gamma || beta ? new Float64Array(c) : null;
    const dz = new Float64Array(m); // gradient w.r.t. the affine output z (before SiLU)
    for (let b = 0; b < n; b++) for (let gi = 0; gi < groups; gi++) {
      const base = (b * c + gi * cg) * hw, mu = mean[b * groups + gi], rs = rstd[b * groups + gi];
      let sumG = 0, sumGX = 0; // Σ ĝ and Σ ĝ·x̂ where ĝ = dL/dx̂
      for (let ci = 0; ci < cg; ci++) {
        const ch = gi * cg + ci, ga = gamma ? gamma[ch] : 1, be = beta ? beta[ch] : 0;
        for (let i = 0; i < hw; i++) {
          const k = base + ci * hw + i, xh = (x[k] - mu) * rs;
          let g = dy[k];
          if (silu) { const z = xh * ga + be, s = sigmoid(z); g *= s * (1 + z * (1 - s)); }
          dz[ci * hw + i] = g;
          if (dgamma) dgamma[ch] += g * xh;
          if (dbeta) dbeta[ch] += g;
          const gh = g * ga;
          sumG += gh; sumGX += gh * xh;
        }
      }
      for (let ci = 0; ci < cg; ci++) {
        const ga = gamma ? gamma[gi * cg + ci] : 1;
        for (let i = 0; i < hw; i++) {
          const k = base + ci * hw + i, xh = (x[k] - mu) * rs;
          dx[k] = rs * (dz[ci * hw + i] * ga - sumG / m - xh * sumGX / m);
        }
      }
    }
    return { dx, dgamma: dgamma && Float32Array.from(dgamma), dbeta: beta && dbeta ? Float32Array.from(dbeta) : null };
  },

  layerNorm(x, gamma, beta, rows, d, eps): NormResult {
    const y = new Float32Array(x.length), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const [mu, rs] = normStats(x, r * d, d, eps);
      mean[r] = mu; rstd[r] = rs;
      for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mu) * rs * (gamma ? gamma[i] : 1) + (beta ? beta[i] : 0);
    }
    return { y, mean, rstd };
  },

  layerNormBackward(dy, x, gamma, mean, rstd, rows, d, hasBeta): NormGrads {
    const dx = new Float32Array(x.length);
    const dgamma = gamma ? new Float64Array(d) : null, dbeta = hasBeta ? new Float64Array(d) : null;
    for (let r = 0; r < rows; r++) {
      const mu = mean[r], rs = rstd[r];
      let sumG = 0, sumGX = 0;
      for (let i = 0; i < d; i++) {
        const k = r * d + i, xh = (x[k] - mu) * rs, g = dy[k], gh = g * (gamma ? gamma[i] : 1);
        if (dgamma) dgamma[i] += g * xh;
        if (dbeta) dbeta[i] += g;
        sumG += gh; sumGX += gh * xh;
      }
      for (let i = 0; i < d; i++) {
        const k = r * d + i, xh = (x[k] - mu) * rs;
        dx[k] = rs * (dy[k] * (gamma ? gamma[i] : 1) - sumG / d - xh * sumGX / d);
      }
    }
    return { dx, dgamma: dgamma && Float32Array.from(dgamma), dbeta: dbeta && Float32Array.from(dbeta) };
  },

  softmax(x, rows, d): F32 {
    const y = new Float32Array(x.length);
    for (let r = 0; r < rows; r++) {
      let mx = -Infinity;
      for (let i = 0; i < d; i++) mx = Math.max(mx, x[r * d + i]);
      let s = 0;
      const e = new Float64Array(d);
      for (let i = 0; i < d; i++) { e[i] = Math.exp(x[r * d + i] - mx); s += e[i]; }
      for (let i = 0; i < d; i++) y[r * d + i] = e[i] / s;
    }
    return y;
  },

  softmaxBackward(y, dy, rows, d): F32 {
    const dx = new Float32Array(y.length);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += y[r * d + i] * dy[r * d + i];
      for (let i = 0; i < d; i++) dx[r * d + i] = y[r * d + i] * (dy[r * d + i] - dot);
    }
    return dx;
  },

  logSoftmax(x, rows, d): F32 {
    const y = new Float32Array(x.length);
    for (let r = 0; r < rows; r++) {
      let mx = -Infinity;
      for (let i = 0; i < d; i++) mx = Math.max(mx, x[r * d + i]);
      let s = 0;
      for (let i = 0; i < d; i++) s += Math.exp(x[r * d + i] - mx);
      const lse = mx + Math.log(s);
      for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] - lse;
    }
    return y;
  },

  logSoftmaxBackward(y, dy, rows, d): F32 {
    const dx = new Float32Array(y.length);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += dy[r * d + i];
      for (let i = 0; i < d; i++) dx[r * d + i] = dy[r * d + i] - Math.exp(y[r * d + i]) * s;
    }
    return dx;
  },

  gatherRows(table: F32, idx: I32, d: number): F32 {
    const out = new Float32Array(idx.length * d);
    for (let i = 0; i < idx.length; i++) out.set(table.subarray(idx[i] * d, idx[i] * d + d), i * d);
    return out;
  },

  scatterAddRows(dy: F32, idx: I32, rows: number, d: number): F32 {
    const out = new Float32Array(rows * d);
    for (let i = 0; i < idx.length; i++) for (let j = 0; j < d; j++) out[idx[i] * d + j] += dy[i * d + j];
    return out;
  },

  adamW(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step): void {
    const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
    for (let i = 0; i < p.length; i++) {
      let pi = p[i] * (1 - lr * weightDecay);
      const mi = (m[i] = beta1 * m[i] + (1 - beta1) * g[i]);
      const vi = (v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]);
      pi -= (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      p[i] = pi;
    }
  },

  lerpInPlace(s, v, a): void {
    for (let j = 0; j < s.length; j++) s[j] += a * (v[j] - s[j]);
  },
};
