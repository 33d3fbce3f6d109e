/**
 * Native addon kernels against the js reference backend, plus argument validation (malformed calls must
 * throw an Error, never crash the process). Skipped when the addon is not built.
 *
 *   npx tsx --test test/native-kernels.test.ts
 */
import { test } from 'node:test';
import { rng } from './helpers/compare.js';
import assert from 'node:assert/strict';
import { ACTIVATIONS, type ActivationOp, type Backend, type BinaryOp, type Conv2dGeometry, type F32, UNARY_OPS, type UnaryOp } from '../src/backends/backend.js';
import { erf, jsBackend } from '../src/backends/js/index.js';
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { loadNativeBackend, nativeAddon, nativeAddonPath, type NativeAddon } from '../src/backends/native/index.js';

const loaded = loadNativeBackend();
const skip: string | false = 'error' in loaded ? `native backend unavailable: ${loaded.error}` : false;
if (skip) console.log(`# skipping native kernel tests: ${skip}`);
const nat = ('error' in loaded ? undefined : loaded) as Required<Backend>;
const addon = (skip ? undefined : nativeAddon()) as NativeAddon;
const js = jsBackend as Required<Backend>;

/** References for the fused kernels the js backend leaves to composites (float64, rounded once). */
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const ACT: Record<ActivationOp, [(x: number) => number, (x: number) => number]> = {
  sigmoid: [sig, (x) => sig(x) * (1 - sig(x))],
  silu: [(x) => x * sig(x), (x) => sig(x) * (1 + x * (1 - sig(x)))],
  gelu: [(x) => 0.5 * x * (1 + erf(x * Math.SQRT1_2)),
    (x) => 0.5 * (1 + erf(x * Math.SQRT1_2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)],
};
const refActivation = (op: ActivationOp, x: F32) => x.map((v) => ACT[op][0](v));
const refActivationBackward = (op: ActivationOp, x: F32, dy: F32) => x.map((v, i) => dy[i] * ACT[op][1](v));
const refUpsample = (x: F32, planes: number, h: number, w: number) => {
  const y = new Float32Array(planes * 4 * h * w), W2 = 2 * w;
  for (let p = 0; p < planes; p++) for (let i = 0; i < 2 * h; i++) for (let j = 0; j < W2; j++) {
    y[(p * 2 * h + i) * W2 + j] = x[(p * h + (i >> 1)) * w + (j >> 1)];
  }
  return y;
};
const refAvgPool = (x: F32, planes: number, h: number, w: number) => {
  const h2 = h >> 1, w2 = w >> 1, y = new Float32Array(planes * h2 * w2);
  for (let p = 0; p < planes; p++) for (let i = 0; i < h2; i++) for (let j = 0; j < w2; j++) {
    const r0 = (p * h + 2 * i) * w + 2 * j, r1 = r0 + w;
    y[(p * h2 + i) * w2 + j] = 0.25 * (x[r0] + x[r0 + 1] + x[r1] + x[r1 + 1]);
  }
  return y;
};

// ------------------------------------------------------------------ helpers

let seedCounter = 1;
function randn(n: number, scale = 1, offset = 0): F32 {
  const r = rng(seedCounter++ * 7919);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    a[i] = m * Math.cos(2 * Math.PI * v) * scale + offset;
    if (i + 1 < n) a[i + 1] = m * Math.sin(2 * Math.PI * v) * scale + offset;
  }
  return a;
}

function uniform(n: number, lo: number, hi: number): F32 {
  const r = rng(seedCounter++ * 104729);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** |a − e| ≤ rtol · (|e| + rms(e)) + atol elementwise; NaN must match NaN, infinities must match exactly. */
function close(actual: F32 | null, expected: F32 | null, rtol: number, what: string, atol = 1e-30): void {
  if (expected === null || actual === null) {
    assert.equal(actual, expected, `${what}: null mismatch`);
    return;
  }
  assert.ok(actual instanceof Float32Array, `${what}: expected a Float32Array`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  let ss = 0, cnt = 0;
  for (const v of expected) if (Number.isFinite(v)) { ss += v * v; cnt++; }
  const scale = cnt ? Math.sqrt(ss / cnt) : 0;
  for (let i = 0; i < expected.length; i++) {
    const a: number = actual[i], e: number = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      assert.ok(Number.isNaN(e) && Number.isNaN(a), `${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      assert.equal(a, e, `${what}[${i}]`);
      continue;
    }
    const tol = rtol * (Math.abs(e) + scale) + atol;
    if (!(Math.abs(a - e) <= tol)) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > ${tol})`);
    }
  }
}

function throwsErr(fn: () => unknown, re: RegExp, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof Error && re.test(e.message), what);
}

const UNARY: readonly UnaryOp[] = UNARY_OPS;
const BINARY: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'gt', 'lt'];

function unaryInput(op: UnaryOp | ActivationOp, n: number): F32 {
  if (op === 'log' || op === 'sqrt' || op === 'rsqrt') return uniform(n, 0.01, 20);
  if (op === 'reciprocal') { const x = randn(n, 3); for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 0.05) x[i] = 0.5; return x; }
  if (op === 'exp') return uniform(n, -80, 80);
  if (op === 'gelu' || op === 'sigmoid' || op === 'silu' || op === 'tanh') return uniform(n, -12, 12);
  return randn(n, 3);
}

const contiguous = (shape: number[]) => {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
};
/** Strides of `shape` broadcast into `out` (0 on broadcast dims); shape right-aligned. */
const bstrides = (shape: number[], out: number[]) => {
  const full = [...new Array(out.length - shape.length).fill(1), ...shape];
  const c = contiguous(full);
  return full.map((d, i) => (d === 1 && out[i] !== 1 ? 0 : c[i]));
};

// ------------------------------------------------------------------ elementwise

test('unary: every op matches js (sizes below and above the parallel grain)', { skip }, () => {
  for (const n of [1, 17, 100_003]) {
    for (const op of UNARY) {
      const x = unaryInput(op, n);
      // atol: far tails (e.g. gelu(−9) ≈ −1e−25, which the reference rounds to 0)
      close(nat.unary(op, x), js.unary(op, x), 1e-5, `unary ${op} n=${n}`, 1e-20);
    }
  }
});

test('unary: special values (0, ±inf, NaN, extremes)', { skip }, () => {
  const x = new Float32Array([0, -0, Infinity, -Infinity, NaN, 88.7, 89, -87, -104, -200, 1e-30, -1e-30, 3.4e38, -3.4e38, 1e-45]);
  for (const op of UNARY) close(nat.unary(op, x), js.unary(op, x), 1e-5, `unary ${op} specials`, 1e-40);
  const ones = new Float32Array(x.length).fill(1);
  for (const op of ACTIVATIONS) {
    const r = nat.activation(op, x), e = refActivation(op, x);
    // gelu(+inf): the reference's erf series gives NaN; native gives +inf like PyTorch
    if (op === 'gelu') { assert.equal(r[2], Infinity); r[2] = e[2]; }
    close(r, e, 1e-5, `activation ${op} specials`, 1e-40);
    const d = nat.activationBackward(op, x, ones), de = refActivationBackward(op, x, ones);
    if (op === 'gelu') { d[2] = de[2]; d[3] = de[3]; } // ∞·0 in the reference's tail formula
    close(d, de, 1e-5, `activationBackward ${op} specials`, 1e-40);
  }
});

test('activation (fused sigmoid / SiLU / GELU) and its backward match float64 references', { skip }, () => {
  for (const n of [5, 70_001]) {
    for (const op of ACTIVATIONS) {
      const x = unaryInput(op, n), dy = randn(n);
      close(nat.activation(op, x), refActivation(op, x), 1e-5, `activation ${op}`, 1e-20);
      close(nat.activationBackward(op, x, dy), refActivationBackward(op, x, dy), 1e-5, `activationBackward ${op}`);
    }
  }
});

test('binary: every op, broadcast patterns', { skip }, () => {
  const cases: [number[], number[], number[]][] = [
    [[7, 5], [7, 5], [7, 5]],
    [[300, 257], [300, 257], [300, 257]],
    [[4, 5], [1], [4, 5]],
    [[1], [6, 3], [6, 3]],
    [[4, 5], [5], [4, 5]],
    [[4, 1], [4, 6], [4, 6]],
    [[2, 1, 4], [1, 3, 1], [2, 3, 4]],
    [[64, 8, 33], [8, 1], [64, 8, 33]],
    [[], [], []],
  ];
  for (const [as, bs, out] of cases) {
    const na = as.reduce((p, q) => p * q, 1), nb = bs.reduce((p, q) => p * q, 1);
    for (const op of BINARY) {
      const a = op === 'pow' ? uniform(na, 0.1, 3) : randn(na);
      const b = op === 'pow' ? randn(nb) : op === 'div' ? uniform(nb, 0.5, 2) : randn(nb);
      if (op === 'eq' || op === 'maximum' || op === 'minimum') for (let i = 0; i < Math.min(na, nb); i += 3) a[i] = b[i];
      const sa = bstrides(as, out), sb = bstrides(bs, out);
      close(nat.binary(op, a, sa, b, sb, out), js.binary(op, a, sa, b, sb, out), 1e-5, `binary ${op} ${JSON.stringify([as, bs])}`);
    }
  }
});

test('binary: permuted (non-contiguous) operand and NaN / pow edge cases', { skip }, () => {
  const a = randn(6 * 9), b = randn(9 * 6);
  // a viewed transposed: logical [9, 6] over storage [6, 9]
  for (const op of BINARY) {
    close(nat.binary(op, a, [1, 9], b, [6, 1], [9, 6]), js.binary(op, a, [1, 9], b, [6, 1], [9, 6]), 1e-5, `binary ${op} permuted`);
  }
  const x = new Float32Array([NaN, 1, -1, 0, 2, NaN, -2, Infinity]);
  const y = new Float32Array([1, NaN, Infinity, 0, NaN, NaN, 0.5, -Infinity]);
  for (const op of BINARY) close(nat.binary(op, x, [1], y, [1], [8]), js.binary(op, x, [1], y, [1], [8]), 1e-6, `binary ${op} specials`);
});

test('where: broadcast condition', { skip }, () => {
  const out = [5, 4, 33];
  const cond = new Float32Array(4 * 33).map((_, i) => (i % 3 === 0 ? 0 : i % 5 === 0 ? NaN : 1));
  const a = randn(5 * 4 * 33), b = randn(33);
  const cs = bstrides([4, 33], out), as = bstrides(out, out), bs = bstrides([33], out);
  close(nat.where(cond, cs, a, as, b, bs, out), js.where(cond, cs, a, as, b, bs, out), 0, 'where');
});

test('affine, powScalar, clamp', { skip }, () => {
  for (const n of [9, 50_000]) {
    const x = randn(n, 4);
    close(nat.affine(x, 0.1, -3.3), js.affine(x, 0.1, -3.3), 1e-6, 'affine');
    const xp = uniform(n, 0, 5);
    for (const p of [2, 0.5, 3, -1, 1, 0, 1.7, -2.5, 1 / 3]) close(nat.powScalar(xp, p), js.powScalar(xp, p), 1e-5, `pow ${p}`);
    for (const p of [2, 3, 0.5, 1.7]) close(nat.powScalar(x, p), js.powScalar(x, p), 1e-5, `pow signed ${p}`);
    for (const [lo, hi] of [[-1, 1], [0, Infinity], [-Infinity, 0.3], [0.1, 0.1]]) {
      close(nat.clamp(x, lo, hi), js.clamp(x, lo, hi), 0, `clamp ${lo} ${hi}`);
    }
  }
  const sp = new Float32Array([NaN, -0, 0, -Infinity, Infinity, -1, 1]);
  for (const p of [0.5, 2, Infinity, -Infinity, NaN, 0]) close(nat.powScalar(sp, p), js.powScalar(sp, p), 1e-6, `pow specials ${p}`);
  close(nat.clamp(sp, -0.5, 0.5), js.clamp(sp, -0.5, 0.5), 0, 'clamp specials');
});

test('reduce: sum / max over the middle axis', { skip }, () => {
  const shapes: [number, number, number][] = [[1, 10, 1], [7, 300, 1], [3, 17, 5], [2, 1000, 64], [1, 1, 9], [4, 0, 3], [3, 513, 4097]];
  for (const [o, s, i] of shapes) {
    const x = randn(o * s * i, 2, 0.5);
    for (const op of ['sum', 'max'] as const) close(nat.reduce(op, x, o, s, i), js.reduce(op, x, o, s, i), 1e-5, `reduce ${op} ${o},${s},${i}`);
  }
  const x = new Float32Array([1, NaN, 3, -Infinity, -Infinity, -Infinity]);
  close(nat.reduce('max', x, 2, 3, 1), js.reduce('max', x, 2, 3, 1), 0, 'reduce max NaN / -inf');
});

test('stridedCopy: permute, slice, pad, accumulate with repeats', { skip }, () => {
  const check = (src: F32, so: number, ss: number[], shape: number[], dstLen: number, doff: number, ds: number[], acc: boolean, what: string) => {
    const base = randn(dstLen);
    const d1 = base.slice(), d2 = base.slice();
    nat.stridedCopy(src, so, ss, shape, d1, doff, ds, acc);
    js.stridedCopy(src, so, ss, shape, d2, doff, ds, acc);
    close(d1, d2, acc ? 1e-6 : 0, what);
  };
  const src = randn(2 * 3 * 4 * 5);
  check(src, 0, [60, 20, 5, 1], [2, 3, 4, 5], 120, 0, [60, 20, 5, 1], false, 'identity');
  check(src, 0, [60, 1, 15, 3], [2, 5, 4, 3], 120, 0, contiguous([2, 5, 4, 3]), false, 'permute');
  check(src, 7, [60, 20, 5, 1], [1, 2, 2, 3], 50, 4, [0, 18, 7, 2], false, 'slice into strided dst');
  check(src, 0, [20, 5, 1], [3, 4, 5], 6 * 7 * 8, 8 + 9, [56, 8, 1], false, 'pad');
  check(src, 0, [1], [120], 120, 0, [1], true, 'accumulate contiguous');
  check(src, 0, [20, 5, 1], [6, 4, 5], 20, 0, [0, 5, 1], true, 'accumulate broadcast (repeated destinations)');
  check(src, 3, [0, 1], [9, 4], 4, 0, [0, 1], true, 'expand gradient');
  const big = randn(512 * 300);
  check(big, 0, [1, 512], [512, 300], 512 * 300, 0, [300, 1], false, 'big transpose');
  check(big, 0, [300, 1], [512, 300], 512 * 300, 0, [300, 1], true, 'big accumulate');
});

// ------------------------------------------------------------------ matmul

const MATMUL_CASES: [number, number, number, number, number, number][] = [
  // batch, m, n, k, aBatchStride(-1: m·k, 0: broadcast), bBatchStride
  [1, 3, 4, 5, -1, -1],
  [4, 17, 9, 33, -1, -1],
  [3, 8, 8, 8, 0, -1],
  [3, 8, 8, 8, -1, 0],
  [1, 150, 130, 700, -1, -1],   // several k blocks, edge tiles in m and n
  [1, 256, 256, 256, -1, -1],
  [5, 64, 48, 40, -1, -1],
  [2, 1, 1, 1, -1, -1],
  [1, 7, 1000, 50, -1, -1],     // one row tile: the threads split n
  [1, 5000, 3, 20, -1, -1],     // many row tiles, one partial column tile
];

function checkMatmul(label: string): void {
  for (const [batch, m, n, k, sa0, sb0] of MATMUL_CASES) {
    for (const ta of [false, true]) for (const tb of [false, true]) {
      const sa = sa0 < 0 ? m * k : sa0, sb = sb0 < 0 ? k * n : sb0;
      const a = randn(sa === 0 ? m * k : batch * m * k), b = randn(sb === 0 ? k * n : batch * k * n);
      const tol = k > 100 ? 1e-4 : 1e-5;
      close(nat.matmul(a, b, batch, m, n, k, ta, tb, sa, sb), js.matmul(a, b, batch, m, n, k, ta, tb, sa, sb), tol,
        `${label} matmul b${batch} ${m}x${n}x${k} ta=${ta} tb=${tb}`);
    }
  }
  const z = nat.matmul(new Float32Array(0), new Float32Array(0), 2, 3, 4, 0, false, false, 0, 0);
  assert.deepEqual(Array.from(z), new Array(24).fill(0));
}

test('matmul: transposes, batch broadcast, large k, thread split', { skip }, () => checkMatmul(addon.isa()));

// ------------------------------------------------------------------ conv

function geom(n: number, c: number, h: number, w: number, o: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number): Conv2dGeometry {
  return { n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh: Math.floor((h + 2 * ph - kh) / sh) + 1, ow: Math.floor((w + 2 * pw - kw) / sw) + 1 };
}

const CONV_CASES: Conv2dGeometry[] = [
  geom(2, 5, 9, 9, 40, 3, 3, 1, 1, 1, 1),     // o tiles 32 + 16 (partial)
  geom(1, 3, 7, 30, 8, 3, 3, 1, 1, 1, 1),     // wide rows: several pixel tiles, n < threads
  geom(3, 16, 8, 8, 32, 3, 3, 2, 2, 1, 1),    // stride 2
  geom(2, 8, 6, 10, 12, 1, 1, 1, 1, 0, 0),    // 1×1
  geom(2, 6, 9, 7, 5, 4, 4, 2, 2, 1, 1),      // 4×4 stride 2 (fallback paths)
  geom(2, 4, 5, 6, 7, 3, 3, 1, 1, 0, 0),      // no padding
  geom(1, 2, 4, 4, 3, 3, 3, 1, 1, 2, 2),      // padding > kernel/2
  geom(2, 3, 11, 13, 9, 3, 5, 1, 2, 1, 2),    // rectangular kernel, mixed strides
  geom(4, 64, 6, 6, 64, 3, 3, 1, 1, 1, 1),    // large K (576)
  geom(2, 8, 9, 7, 16, 3, 3, 2, 2, 1, 1),     // stride 2, odd sizes (backward-input phases of unequal size)
  geom(2, 8, 10, 10, 8, 4, 4, 2, 2, 1, 1),    // 4×4 stride 2
  geom(2, 8, 6, 7, 8, 1, 1, 2, 2, 0, 0),      // 1×1 stride 2: some input pixels get no gradient
  geom(1, 8, 5, 5, 8, 3, 3, 2, 2, 2, 2),      // stride 2, padding = kernel − 1
  geom(2, 8, 10, 11, 12, 3, 3, 3, 3, 1, 1),   // stride 3
  geom(2, 16, 9, 9, 16, 3, 3, 1, 2, 1, 1),    // strides 1 × 2
  // Winograd F(2×2, 3×3) and F(4×4, 3×3) (3×3, stride 1, padding 1, ≥ 8 channels in and out): sizes that cut
  // the last 2×2 and 4×4 tiles, a partial channel tile, one image split into tile-row blocks, wide inputs split
  // by the L2 budget, the UNet's 28×28
  geom(2, 8, 9, 7, 40, 3, 3, 1, 1, 1, 1),
  geom(1, 20, 14, 14, 24, 3, 3, 1, 1, 1, 1),
  geom(3, 12, 1, 5, 8, 3, 3, 1, 1, 1, 1),
  geom(1, 200, 7, 40, 8, 3, 3, 1, 1, 1, 1),
  geom(2, 16, 18, 35, 48, 3, 3, 1, 1, 1, 1),  // whole register blocks in the channel-last transposes
  geom(2, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1),
  geom(1, 24, 10, 13, 16, 3, 3, 1, 1, 1, 1),
];

function checkConv(label: string): void {
  for (const g of CONV_CASES) {
    const x = randn(g.n * g.c * g.h * g.w), w = randn(g.o * g.c * g.kh * g.kw, 0.2), bias = randn(g.o);
    const dy = randn(g.n * g.o * g.oh * g.ow);
    const tol = g.c * g.kh * g.kw > 100 ? 1e-4 : 2e-5;
    const name = `${label} ${JSON.stringify(g)}`;
    close(nat.conv2d(x, w, bias, g), js.conv2d(x, w, bias, g), tol, `conv2d ${name}`);
    close(nat.conv2d(x, w, null, g), js.conv2d(x, w, null, g), tol, `conv2d nobias ${name}`);
    close(nat.conv2dBackwardInput(dy, w, g), js.conv2dBackwardInput(dy, w, g), tol, `conv2dBackwardInput ${name}`);
    close(nat.conv2dBackwardWeight(x, dy, g), js.conv2dBackwardWeight(x, dy, g), tol, `conv2dBackwardWeight ${name}`);
  }
}

for (const mode of ['auto', 'direct', 'avx2', 'im2col', 'winograd2', 'winograd4'] as const) {
  test(`conv2d forward / backward-input / backward-weight (${mode})`, { skip }, () => {
    const impl = addon.convImpl(mode);
    if (mode === 'avx2' && !impl.endsWith('direct-avx2')) return;  // this CPU has no AVX2
    try {
      checkConv(impl);
    } finally {
      addon.convImpl('auto');
    }
  });
}

test('conv2d at batch 1: packed weights are reused only while unchanged (edits in place are seen)', { skip }, () => {
  const r = rng(11);
  for (const g of [
    { n: 1, c: 16, h: 9, w: 9, o: 24, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, oh: 9, ow: 9 },  // Winograd
    { n: 1, c: 16, h: 9, w: 9, o: 24, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, oh: 5, ow: 5 },  // direct
  ] as Conv2dGeometry[]) {
    const x = Float32Array.from({ length: 16 * 81 }, r), w = Float32Array.from({ length: 24 * 16 * 9 }, r);
    const y1 = nat.conv2d(x, w, null, g);
    close(y1, js.conv2d(x, w, null, g), 1e-4, `conv2d ${JSON.stringify(g)}`);
    assert.deepEqual(nat.conv2d(x, w.slice(), null, g), y1, 'a copy of the same weights gives the same bits');
    w[24 * 16 * 9 - 1] += 0.5; // the last weight: a compare that stopped early would miss it
    const y2 = nat.conv2d(x, w, null, g);
    close(y2, js.conv2d(x, w, null, g), 1e-4, `conv2d after an edit ${JSON.stringify(g)}`);
    assert.notDeepEqual(y2, y1);
  }
});

// Every instruction set this CPU runs, each capped in turn: the GEMM micro-kernels (and the convolution
// kernels of that ISA, or im2col + GEMM below AVX2) against the js reference.
const BASE_ISA = process.arch === 'arm64' ? 'neon' : process.arch === 'x64' ? 'sse2' : 'generic';
for (const isa of [BASE_ISA, 'avx2', 'avx512'] as const) {
  test(`GEMM and convolutions on the ${isa} kernels`, { skip }, (t) => {
    try {
      const got = addon.isa(isa as 'sse2');
      if (got !== isa) { t.skip(`this CPU runs ${addon.info().cpu} at most`); return; }
      assert.match(addon.info().gemm, new RegExp(`^diffuse sgemm ${isa} \\d+x\\d+$`));
      checkMatmul(isa);
      checkConv(`${isa} ${addon.info().conv}`);
    } finally {
      addon.isa('auto');
    }
  });
}

test('the addon links no BLAS or other math library', { skip: skip || (process.platform !== 'linux' && 'ldd is Linux-only') }, () => {
  const libs = execFileSync('ldd', [nativeAddonPath()], { encoding: 'utf8' });
  assert.doesNotMatch(libs, /blas|lapack|mkl|accelerate|gomp|omp\.so/i, libs);
  assert.match(addon.info().gemm, /^diffuse sgemm /);
});

test('conv2d and matmul give the same results with 1 thread and with several', { skip }, () => {
  const prev = addon.threads();
  const g = geom(3, 16, 10, 10, 48, 3, 3, 1, 1, 1, 1);
  const x = randn(g.n * g.c * g.h * g.w), w = randn(g.o * g.c * 9, 0.2), dy = randn(g.n * g.o * g.oh * g.ow);
  const a = randn(300 * 200), b = randn(200 * 100);
  const run = () => [nat.conv2d(x, w, null, g), nat.conv2dBackwardInput(dy, w, g), nat.conv2dBackwardWeight(x, dy, g),
    nat.matmul(a, b, 1, 300, 100, 200, false, false, 0, 0)];
  try {
    addon.threads(1);
    const one = run();
    addon.threads(Math.max(2, prev));
    const many = run();
    one.forEach((r, i) => close(many[i], r, 1e-5, `result ${i}`));
  } finally {
    addon.threads(prev);
  }
});

test('worker threads calling the addon concurrently get correct results', { skip }, async () => {
  // Each worker runs the same conv / matmul / softmax loop and returns checksums; the main thread runs it
  // at the same time. The addon serializes kernels (one pool per process), so all must agree exactly.
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const a = require(workerData.path);
    const f = (n, s) => { const x = new Float32Array(n); let v = s; for (let i = 0; i < n; i++) { v = (v * 16807) % 2147483647; x[i] = v / 2147483647 - 0.5; } return x; };
    const g = { n: 4, c: 16, h: 12, w: 12, o: 32, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, oh: 12, ow: 12 };
    const x = f(4 * 16 * 144, 7), w = f(32 * 16 * 9, 11), m1 = f(200 * 300, 13), m2 = f(300 * 150, 17);
    const sum = (y) => { let s = 0; for (let i = 0; i < y.length; i++) s += y[i] * ((i % 7) + 1); return s; };
    const out = [];
    for (let it = 0; it < 20; it++) {
      out.push(sum(a.conv2d(x, w, null, g)), sum(a.matmul(m1, m2, 1, 200, 150, 300, false, false, 0, 0)), sum(a.softmax(m1, 200, 300)));
    }
    parentPort.postMessage(out);`;
  const path = nativeAddonPath();
  const run = () => new Promise<number[]>((res, rej) => {
    const wk = new Worker(src, { eval: true, workerData: { path } });
    wk.once('message', res);
    wk.once('error', rej);
  });
  const results = await Promise.all([run(), run(), run()]);
  for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
  for (let i = 3; i < results[0].length; i++) assert.equal(results[0][i], results[0][i % 3], `iteration ${Math.floor(i / 3)} differs`);
});

// ------------------------------------------------------------------ spatial, norms, softmax

test('upsampleNearest2x, avgPool2x2', { skip }, () => {
  for (const [p, h, w] of [[3, 4, 6], [64, 32, 32], [1, 1, 1]]) {
    const x = randn(p * h * w);
    close(nat.upsampleNearest2x(x, p, h, w), refUpsample(x, p, h, w), 0, 'upsample');
  }
  for (const [p, h, w] of [[3, 4, 6], [64, 32, 32], [2, 2, 2]]) {
    const x = randn(p * h * w);
    close(nat.avgPool2x2(x, p, h, w), refAvgPool(x, p, h, w), 1e-6, 'avgPool');
  }
});

test('groupNorm (+SiLU) forward and backward, with and without affine', { skip }, () => {
  const cases: [number, number, number, number][] = [[2, 8, 9, 4], [3, 12, 50, 3], [2, 64, 196, 32], [1, 6, 1, 6]];
  for (const [n, c, hw, groups] of cases) {
    for (const silu of [false, true]) for (const aff of ['both', 'gamma', 'none'] as const) {
      const x = randn(n * c * hw, 2, 1.5);
      const gamma = aff !== 'none' ? randn(c, 0.5, 1) : null, beta = aff === 'both' ? randn(c, 0.3) : null;
      const name = `gn ${n},${c},${hw},${groups} silu=${silu} ${aff}`;
      const r1 = nat.groupNorm(x, gamma, beta, n, c, hw, groups, 1e-5, silu), r2 = js.groupNorm(x, gamma, beta, n, c, hw, groups, 1e-5, silu);
      close(r1.y, r2.y, 1e-5, `${name} y`);
      close(r1.mean, r2.mean, 1e-5, `${name} mean`);
      close(r1.rstd, r2.rstd, 1e-5, `${name} rstd`);
      const dy = randn(n * c * hw);
      const g1 = nat.groupNormBackward(dy, x, gamma, beta, r2.mean, r2.rstd, n, c, hw, groups, silu);
      const g2 = js.groupNormBackward(dy, x, gamma, beta, r2.mean, r2.rstd, n, c, hw, groups, silu);
      // atol: a group of one element has dx = rstd·(g − g) = 0, computed from terms of size rstd ≈ 316
      const atol = c === groups && hw === 1 ? 1e-4 : 1e-30;
      close(g1.dx, g2.dx, 1e-4, `${name} dx`, atol);
      close(g1.dgamma, g2.dgamma, 1e-5, `${name} dgamma`);
      close(g1.dbeta, g2.dbeta, 1e-5, `${name} dbeta`);
    }
  }
});

test('conv2dNormed (with its epilogue) / conv2dBackwardWeightNormed: the same bits as the separate ops', { skip }, () => {
  // Winograd F(4×4) at 28×28 and 14×14, F(2×2)'s weight gradient at 12×12, the direct weight gradient at 7×7
  // (the norm stored first), a strided and a 1×1 convolution (stored first), channels not a multiple of 8
  const cases: [number, number, number, number, number, number, number][] = [
    // n, c, h, o, k, stride, groups
    [3, 32, 28, 32, 3, 1, 8], [2, 64, 14, 40, 3, 1, 8], [2, 24, 12, 16, 3, 1, 4], [4, 16, 7, 16, 3, 1, 4],
    [2, 12, 9, 8, 3, 2, 3], [2, 16, 6, 24, 1, 1, 4], [2, 20, 10, 12, 3, 1, 5],
  ];
  for (const [n, c, h, o, k, s, groups] of cases) {
    for (const silu of [false, true]) for (const aff of [true, false]) {
      const p = (k - 1) / 2, oh = Math.floor((h + 2 * p - k) / s) + 1;
      const g = geom(n, c, h, h, o, k, k, s, s, p, p);
      const x = randn(n * c * h * h, 2, 0.5), w = randn(o * c * k * k, 0.2), bias = randn(o, 0.1);
      const gamma = aff ? randn(c, 0.5, 1) : null, beta = aff ? randn(c, 0.3) : null;
      const name = `${n}×${c}×${h}×${h} → ${o}, ${k}×${k} /${s}, groups ${groups}, silu=${silu}, affine=${aff}`;
      const st = nat.groupNormStats(x, n, c, h * h, groups, 1e-5), ref = nat.groupNorm(x, gamma, beta, n, c, h * h, groups, 1e-5, silu);
      assert.deepEqual(st.mean, ref.mean, `${name}: mean`);
      assert.deepEqual(st.rstd, ref.rstd, `${name}: rstd`);
      const y = nat.conv2dNormed(x, gamma, beta, st.mean, st.rstd, groups, silu, w, bias, null, null, g);
      const conv = nat.conv2d(ref.y, w, bias, g);
      assert.deepEqual(y, conv, `${name}: forward`);
      // with a per-image bias and a residual: the bits of the separate additions, in their order
      const temb = randn(n * o), res = randn(n * o * oh * oh);
      const sep = conv.map((v, i) => Math.fround(Math.fround(v + temb[Math.floor(i / (oh * oh))]) + res[i]));
      assert.deepEqual(nat.conv2dNormed(x, gamma, beta, st.mean, st.rstd, groups, silu, w, bias, temb, res, g), sep, `${name}: epilogue`);
      const dy = randn(n * o * oh * oh);
      const dw = nat.conv2dBackwardWeightNormed(x, gamma, beta, st.mean, st.rstd, groups, silu, dy, g);
      assert.deepEqual(dw, nat.conv2dBackwardWeight(ref.y, dy, g), `${name}: weight gradient`);
    }
  }
});

test('layerNorm forward and backward', { skip }, () => {
  for (const [rows, d] of [[5, 7], [300, 256], [1, 1], [64, 1000]]) {
    for (const [hasG, hasB] of [[true, true], [true, false], [false, true], [false, false]]) {
      const x = randn(rows * d, 3, -2);
      const gamma = hasG ? randn(d, 0.5, 1) : null, beta = hasB ? randn(d) : null;
      const r1 = nat.layerNorm(x, gamma, beta, rows, d, 1e-5), r2 = js.layerNorm(x, gamma, beta, rows, d, 1e-5);
      const name = `ln ${rows}x${d} g=${hasG} b=${hasB}`;
      close(r1.y, r2.y, 1e-5, `${name} y`);
      close(r1.mean, r2.mean, 1e-5, `${name} mean`);
      close(r1.rstd, r2.rstd, 1e-5, `${name} rstd`);
      const dy = randn(rows * d);
      const g1 = nat.layerNormBackward(dy, x, gamma, r2.mean, r2.rstd, rows, d, hasB);
      const g2 = js.layerNormBackward(dy, x, gamma, r2.mean, r2.rstd, rows, d, hasB);
      close(g1.dx, g2.dx, 1e-4, `${name} dx`, d === 1 ? 1e-4 : 1e-30);  // d = 1: dx = 0 from terms of size rstd
      close(g1.dgamma, g2.dgamma, 1e-5, `${name} dgamma`);
      close(g1.dbeta, g2.dbeta, 1e-5, `${name} dbeta`);
    }
  }
});

test('softmax / logSoftmax and their backwards (incl. masked −inf entries)', { skip }, () => {
  for (const [rows, d] of [[3, 5], [500, 196], [2, 10000], [4, 1]]) {
    const x = randn(rows * d, 4);
    for (let i = 0; i < x.length; i += 7) if (d > 1) x[i] = -Infinity;
    const y1 = nat.softmax(x, rows, d), y2 = js.softmax(x, rows, d);
    close(y1, y2, 1e-5, `softmax ${rows}x${d}`);
    const dy = randn(rows * d);
    close(nat.softmaxBackward(y2, dy, rows, d), js.softmaxBackward(y2, dy, rows, d), 1e-5, `softmaxBackward ${rows}x${d}`);
    const l1 = nat.logSoftmax(x, rows, d), l2 = js.logSoftmax(x, rows, d);
    close(l1, l2, 1e-5, `logSoftmax ${rows}x${d}`);
    close(nat.logSoftmaxBackward(l2, dy, rows, d), js.logSoftmaxBackward(l2, dy, rows, d), 1e-5, `logSoftmaxBackward ${rows}x${d}`);
  }
});

test('gatherRows, scatterAddRows (repeated indices)', { skip }, () => {
  const rows = 50, d = 33;
  const table = randn(rows * d);
  const idx = new Int32Array([0, 49, 3, 3, 17, 0, 25]);
  close(nat.gatherRows(table, idx, d), js.gatherRows(table, idx, d), 0, 'gatherRows');
  const dy = randn(idx.length * d);
  close(nat.scatterAddRows(dy, idx, rows, d), js.scatterAddRows(dy, idx, rows, d), 0, 'scatterAddRows');
  const bigIdx = new Int32Array(5000).map((_, i) => (i * 7919) % 1000);
  const bigDy = randn(5000 * 64);
  close(nat.scatterAddRows(bigDy, bigIdx, 1000, 64), js.scatterAddRows(bigDy, bigIdx, 1000, 64), 1e-6, 'scatterAddRows big');
});

test('adamW: in place, several steps', { skip }, () => {
  const n = 40_000;
  const p1 = randn(n), g = randn(n), m1 = new Float32Array(n), v1 = new Float32Array(n);
  const p2 = p1.slice(), m2 = m1.slice(), v2 = v1.slice();
  for (let step = 1; step <= 3; step++) {
    nat.adamW(p1, g, m1, v1, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
    js.adamW(p2, g, m2, v2, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
  }
  close(p1, p2, 1e-6, 'adamW p');
  close(m1, m2, 1e-6, 'adamW m');
  close(v1, v2, 1e-6, 'adamW v');
});

// ------------------------------------------------------------------ validation

test('malformed arguments throw an Error naming the kernel (no crash)', { skip }, () => {
  const a = addon as unknown as Record<string, (...args: unknown[]) => unknown>;
  const f = (n: number) => new Float32Array(n);
  const g = geom(1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1);
  const cases: [string, unknown[], RegExp][] = [
    ['unary', ['exp'], /unary: expected 2 arguments/],
    ['unary', ['nope', f(3)], /unary: unknown op/],
    ['unary', ['exp', new Float64Array(3)], /unary: .*Float32Array/],
    ['unary', ['exp', [1, 2, 3]], /unary: .*Float32Array/],
    ['unary', [3, f(3)], /unary: .*string/],
    ['unary', ['silu', f(3)], /unary: unknown op 'silu'/],
    ['activation', ['exp', f(3)], /activation: unknown op 'exp'/],
    ['activationBackward', ['silu', f(3), f(4)], /activationBackward: dy has 4/],
    ['binary', ['add', f(3), [1], f(3), [1], [4]], /binary: a: strided view/],
    ['binary', ['add', f(4), [1], f(4), [1, 0], [4]], /binary: .*same length/],
    ['binary', ['add', f(4), [1], f(4), [1], [-4]], /binary: .*outShape/],
    ['binary', ['add', f(4), [1], f(4), [1], [4.5]], /binary: .*outShape/],
    ['binary', ['add', f(4), [1], f(4), [1], 'x'], /binary: .*array/],
    ['binary', ['add', f(4), [1e300], f(4), [1], [4]], /binary/],
    ['where', [f(2), [1], f(4), [1], f(4), [1], [4]], /where: cond: strided view/],
    ['groupNormStats', [f(10), 1, 4, 3, 2, 1e-5], /groupNormStats: x has 10 elements/],
    ['groupNormStats', [f(12), 1, 4, 3, 3, 1e-5], /groupNormStats: c = 4 is not a multiple of groups = 3/],
    ['conv2dNormed', [f(50), null, null, f(1), f(1), 1, true, f(54), null, null, null], /conv2dNormed: expected 12 arguments/],
    ['conv2dNormed', [f(50), null, null, f(2), f(1), 1, true, f(54), null, null, null, g], /conv2dNormed: mean and rstd must have n·groups = 1/],
    ['conv2dNormed', [f(50), f(3), null, f(1), f(1), 1, true, f(54), null, null, null, g], /conv2dNormed: gamma has 3 elements/],
    ['conv2dNormed', [f(50), null, null, f(1), f(1), 3, true, f(54), null, null, null, g], /conv2dNormed: c = 2 is not a multiple/],
    ['conv2dNormed', [f(49), null, null, f(1), f(1), 1, true, f(54), null, null, null, g], /conv2dNormed: x has 49 elements/],
    ['conv2dNormed', [f(50), null, null, f(1), f(1), 1, 'yes', f(54), null, null, null, g], /conv2dNormed: .*boolean/],
    ['conv2dNormed', [f(50), null, null, f(1), f(1), 1, true, f(54), null, f(4), null, g], /conv2dNormed: imageBias has 4 elements, the geometry needs 3/],
    ['conv2dNormed', [f(50), null, null, f(1), f(1), 1, true, f(54), null, null, f(74), g], /conv2dNormed: residual has 74 elements, the geometry needs 75/],
    ['conv2dBackwardWeightNormed', [f(50), null, f(1), f(1), f(1), 1, false, f(75), g], /conv2dBackwardWeightNormed: beta has 1 elements/],
    ['conv2dBackwardWeightNormed', [f(50), null, null, f(1), f(1), 1, false, f(74), g], /conv2dBackwardWeightNormed: dy has 74 elements/],
    ['affine', [f(3), 'a', 1], /affine: .*number/],
    ['reduce', ['sum', f(10), 2, 3, 2], /reduce: x has 10/],
    ['reduce', ['mean', f(12), 2, 3, 2], /reduce: unknown op/],
    ['reduce', ['sum', f(12), -2, 3, -2], /reduce: .*outer/],
    ['stridedCopy', [f(10), 0, [1], [11], f(20), 0, [1], false], /stridedCopy: src: strided view/],
    ['stridedCopy', [f(10), 0, [1], [10], f(20), 15, [1], false], /stridedCopy: dst: strided view/],
    ['stridedCopy', [f(10), 0, [-1], [10], f(20), 0, [1], false], /stridedCopy: src: strided view/],
    ['stridedCopy', [f(10), 0, [1], [10], f(20), 0, [1], 'yes'], /stridedCopy: .*boolean/],
    ['stridedCopy', [f(10), 0, [1], [10], new Float32Array(20).subarray(5), 0, [2], false], /stridedCopy: dst: strided view/],
    ['matmul', [f(6), f(6), 1, 2, 2, 4, false, false, 0, 0], /matmul: a has 6/],
    ['matmul', [f(8), f(5), 1, 2, 2, 4, false, false, 0, 0], /matmul: b has 5/],
    ['matmul', [f(8), f(8), 2, 2, 2, 4, false, false, 8, 0], /matmul: a has 8/],
    ['matmul', [f(8), f(8), 1, 2, 2, 4, 0, false, 0, 0], /matmul: .*boolean/],
    ['matmul', [f(8), f(8), 1, 2, 2, 4, false, false, 0], /matmul: expected 10/],
    ['conv2d', [f(49), f(54), null, g], /conv2d: x has 49/],
    ['conv2d', [f(50), f(53), null, g], /conv2d: w has 53/],
    ['conv2d', [f(50), f(54), f(2), g], /conv2d: bias has 2/],
    ['conv2d', [f(50), f(54), null, { ...g, oh: 6 }], /conv2d: geometry/],
    ['conv2d', [f(50), f(54), null, { ...g, sh: 0 }], /conv2d: geometry\.sh/],
    ['conv2d', [f(50), f(54), null, { ...g, kh: undefined }], /conv2d: geometry\.kh/],
    ['conv2d', [f(50), f(54), null, 5], /conv2d: .*object/],
    ['conv2dBackwardInput', [f(74), f(54), g], /conv2dBackwardInput: dy has 74/],
    ['conv2dBackwardWeight', [f(50), f(74), g], /conv2dBackwardWeight: dy has 74/],
    ['upsampleNearest2x', [f(10), 2, 2, 3], /upsampleNearest2x: x has 10/],
    ['avgPool2x2', [f(12), 1, 3, 4], /avgPool2x2: h and w must be even/],
    ['groupNorm', [f(24), null, null, 2, 4, 3, 3, 1e-5, false], /groupNorm: c = 4 is not a multiple/],
    ['groupNorm', [f(24), f(3), null, 2, 4, 3, 2, 1e-5, false], /groupNorm: gamma has 3/],
    ['groupNorm', [f(24), null, null, 2, 4, 3, 0, 1e-5, false], /groupNorm: .*groups/],
    ['groupNormBackward', [f(24), f(24), null, null, f(3), f(4), 2, 4, 3, 2, false], /groupNormBackward: mean and rstd/],
    ['layerNorm', [f(12), f(5), null, 3, 4, 1e-5], /layerNorm: gamma has 5/],
    ['layerNormBackward', [f(12), f(11), null, f(3), f(3), 3, 4, false], /layerNormBackward: x and dy/],
    ['softmax', [f(12), 5, 3], /softmax: x has 12/],
    ['softmaxBackward', [f(12), f(11), 4, 3], /softmaxBackward: y and dy/],
    ['logSoftmax', [f(12), 4], /logSoftmax: expected 3/],
    ['gatherRows', [f(12), new Int32Array([0, 4]), 3], /gatherRows: idx\[1\] = 4 is out of range/],
    ['gatherRows', [f(12), new Int32Array([-1]), 3], /gatherRows: idx\[0\] = -1/],
    ['gatherRows', [f(12), new Float32Array([0]), 3], /gatherRows: .*Int32Array/],
    ['gatherRows', [f(13), new Int32Array([0]), 3], /gatherRows: table has 13/],
    ['scatterAddRows', [f(6), new Int32Array([0, 9]), 4, 3], /scatterAddRows: idx\[1\] = 9/],
    ['scatterAddRows', [f(5), new Int32Array([0, 1]), 4, 3], /scatterAddRows: dy has 5/],
    ['adamW', [f(4), f(4), f(3), f(4), 1e-3, 0.9, 0.999, 1e-8, 0, 1], /adamW: p, g, m and v/],
    ['threads', [0], /threads: .*n/],
    ['convImpl', ['fast'], /convImpl: mode/],
    ['isa', ['avx9'], /isa: isa must be/],
  ];
  for (const [name, args, re] of cases) throwsErr(() => a[name](...args), re, `${name}(${args.length} args) should throw ${re}`);
  // detached buffer
  const buf = new ArrayBuffer(16);
  const det = new Float32Array(buf);
  structuredClone(buf, { transfer: [buf] });
  assert.equal(nat.unary('exp', det).length, 0, 'a detached array reads as empty');
  throwsErr(() => a.matmul(f(4), f(4), 1, 2, 2, 2 ** 40, false, false, 0, 0), /matmul/, 'huge k');
  throwsErr(() => a.scatterAddRows(f(0), new Int32Array(0), 2 ** 52, 2 ** 10), /scatterAddRows/, 'huge output');
});

test('the norm-convolution kernels survive mutated arguments: a result or an Error naming the kernel, never a crash', { skip }, () => {
  const a = addon as unknown as Record<string, (...args: unknown[]) => unknown>;
  const r = rng(2026);
  const f = (n: number) => new Float32Array(n).map(() => r() - 0.5);
  const palette = (): unknown => {
    const k = Math.floor(r() * 12);
    return [null, undefined, -1, 1.5, 0, 2 ** 40, NaN, 'x', true, {}, f(Math.floor(r() * 80)), [1, 2]][k];
  };
  const geomOf = () => {
    const g: Record<string, unknown> = { ...geom(1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1) };
    if (r() < 0.5) {
      const key = Object.keys(g)[Math.floor(r() * 13)];
      g[key] = [-1, 0, 1e12, NaN, 2.5, 'x', 7][Math.floor(r() * 7)];
    }
    return g;
  };
  const valid: Record<string, () => unknown[]> = {
    groupNormStats: () => [f(50), 1, 2, 25, 2, 1e-5],
    conv2dNormed: () => [f(50), f(2), f(2), f(2), f(2), 2, true, f(54), f(3), f(3), f(75), geomOf()],
    conv2dBackwardWeightNormed: () => [f(50), f(2), null, f(1), f(1), 1, false, f(75), geomOf()],
  };
  let results = 0, errors = 0;
  for (let i = 0; i < 600; i++) {
    const name = Object.keys(valid)[i % 3];
    const args = valid[name]();
    const mutations = Math.floor(r() * 3);
    for (let m = 0; m < mutations; m++) args[Math.floor(r() * args.length)] = palette();
    try {
      a[name](...args);
      results++;
    } catch (e) {
      assert.ok(e instanceof Error && e.message.includes(name), `${name}: ${String(e)}`);
      errors++;
    }
  }
  assert.ok(results > 50 && errors > 50, `${results} results, ${errors} errors`);
});

test('empty tensors are fine', { skip }, () => {
  const e = new Float32Array(0);
  assert.equal(nat.unary('exp', e).length, 0);
  assert.equal(nat.binary('add', e, [1], e, [1], [0]).length, 0);
  assert.equal(nat.reduce('sum', e, 0, 5, 3).length, 0);
  assert.equal(nat.softmax(e, 0, 7).length, 0);
  assert.equal(nat.matmul(e, e, 0, 3, 3, 3, false, false, 9, 9).length, 0);
  const g = geom(0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1);
  assert.equal(nat.conv2d(e, new Float32Array(4 * 27), null, g).length, 0);
  assert.equal(nat.conv2dBackwardWeight(e, e, g).length, 4 * 27);
  assert.equal(nat.gatherRows(new Float32Array(6), new Int32Array(0), 3).length, 0);
});
