/**
 * diffuse's side of bench/engine.ts: the same workloads as bench/engine_torch.py, through the public API
 * (autograd included, as PyTorch's side includes its autograd). Prints case name → seconds per repetition.
 * Usage: tsx bench/engine_ours.ts REPS [case,case,...]   (backend from DIFFUSE_BACKEND, default native)
 */
import {
  Generator, conv2d, groupNorm, linear, matmul, noGrad, permute, randn, reshape, softmax,
} from '../src/index.js';

const reps = Number(process.argv[2] ?? 10);
const only = process.argv[3] ? process.argv[3].split(',') : null;
const gen = new Generator(0);

function timed(fn: () => void): number[] {
  // Warm-up to a steady state, the same rule on every side (this file, engine_torch.py, sgemm_openblas.c):
  // at least 3 runs and 0.5 s (scratch buffers, the allocator's heap growing to its working size).
  const w0 = performance.now();
  for (let i = 0; i < 3 || performance.now() - w0 < 500; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

const leaf = (shape: number[], scale = 1) => {
  const t = noGrad(() => randn(shape, gen).mul(scale));
  t.requiresGrad = true;
  return t;
};

function sgemm() {
  const a = randn([1024, 1024], gen), b = randn([1024, 1024], gen);
  return () => { matmul(a, b); };
}

function conv(b: number, c: number, hw: number) {
  const x = leaf([b, c, hw, hw]), w = leaf([c, c, 3, 3], 0.05), bias = leaf([c], 0);
  const gy = randn([b, c, hw, hw], gen);
  return () => {
    x.grad = w.grad = bias.grad = null;
    conv2d(x, w, bias, { padding: 1 }).backward(gy);
  };
}

function groupNormSilu(b: number, c: number, hw: number, groups: number) {
  const x = leaf([b, c, hw, hw]), g = leaf([c], 0).add(1).detach(), beta = leaf([c], 0);
  g.requiresGrad = true;
  const gy = randn([b, c, hw, hw], gen);
  return () => {
    x.grad = g.grad = beta.grad = null;
    groupNorm(x, groups, g, beta, { silu: true }).backward(gy);
  };
}

function attention(b: number, tokens: number, c: number, heads: number) {
  const x = leaf([b, tokens, c]), wqkv = leaf([3 * c, c], c ** -0.5), wo = leaf([c, c], c ** -0.5);
  const gy = randn([b, tokens, c], gen), d = c / heads;
  return () => {
    x.grad = wqkv.grad = wo.grad = null;
    const qkv = permute(reshape(linear(x, wqkv), [b, tokens, 3, heads, d]), [2, 0, 3, 1, 4]); // [3, b, h, t, d]
    const [q, k, v] = [0, 1, 2].map((i) => reshape(qkv.narrow(0, i, 1), [b, heads, tokens, d]));
    const p = softmax(matmul(q, k, { transB: true }).mul(d ** -0.5), -1);
    const o = reshape(permute(matmul(p, v), [0, 2, 1, 3]), [b, tokens, c]);
    linear(o, wo).add(x).backward(gy);
  };
}

const cases: Record<string, () => () => void> = {
  sgemm_1024: sgemm,
  conv3x3_b64_c64_28: () => conv(64, 64, 28),
  conv3x3_b64_c128_14: () => conv(64, 128, 14),
  groupnorm_silu_b64_c128_28: () => groupNormSilu(64, 128, 28, 32),
  attention_b64_t196_c128: () => attention(64, 196, 128, 4),
};

const result: Record<string, number[]> = {};
for (const name of only ?? Object.keys(cases)) result[name] = timed(cases[name]());
console.log(JSON.stringify(result));
