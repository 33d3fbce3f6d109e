// 1,000 training iterations of the composite block (conv → group norm + SiLU → self-attention → linear)
// must keep resident memory flat: nothing may hold on to graphs, gradients or kernel buffers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Generator, Tensor, availableBackends, conv2d, getBackend, groupNorm, linear, mseLoss, noGrad, randn, reshape,
  scaledDotProductAttention, setBackend, transpose, zeros,
} from '../src/index.js';

function compositeStep(params: Record<string, Tensor>, x: Tensor, target: Tensor): number {
  const [n, c, h, w] = x.shape;
  let y = conv2d(x, params.convW, params.convB, { padding: 1 });
  y = groupNorm(y, 4, params.gnW, params.gnB, { silu: true });
  const tokens = transpose(reshape(y, [n, c, h * w]), 1, 2); // [n, hw, c]
  const q = linear(tokens, params.qW), k = linear(tokens, params.kW), v = linear(tokens, params.vW);
  const attended = scaledDotProductAttention(q, k, v).add(tokens);
  const out = linear(attended, params.outW, params.outB);
  const loss = mseLoss(out, target);
  loss.backward();
  const value = loss.item();
  noGrad(() => {
    for (const [name, p] of Object.entries(params)) {
      const st = moments.get(name)!;
      getBackend().adamW(p.f32('adamW'), p.grad!.f32('adamW'), st.m, st.v, 1e-3, 0.9, 0.999, 1e-8, 0.01, ++st.step);
      p.grad = null;
    }
  });
  return value;
}

const moments = new Map<string, { m: Float32Array; v: Float32Array; step: number }>();

for (const name of availableBackends()) {
  test(`resident memory stays flat over 1000 iterations on ${name}`, () => {
    setBackend(name);
    const gen = new Generator(0);
    const c = 8, shape = [2, c, 8, 8];
    const p = (s: number[]) => randn(s, gen, { requiresGrad: true }).mul(0.2).detach();
    const params: Record<string, Tensor> = {
      convW: p([c, c, 3, 3]), convB: p([c]), gnW: p([c]), gnB: p([c]),
      qW: p([c, c]), kW: p([c, c]), vW: p([c, c]), outW: p([c, c]), outB: p([c]),
    };
    moments.clear();
    for (const [k, t] of Object.entries(params)) {
      t.requiresGrad = true;
      moments.set(k, { m: new Float32Array(t.size), v: new Float32Array(t.size), step: 0 });
    }
    const x = randn(shape, gen), target = zeros([2, 64, c]);
    const first = compositeStep(params, x, target);
    for (let i = 0; i < 199; i++) compositeStep(params, x, target);
    const base = process.memoryUsage().rss;
    let last = first;
    for (let i = 0; i < 800; i++) last = compositeStep(params, x, target);
    const growthMiB = (process.memoryUsage().rss - base) / 2 ** 20;
    assert.ok(last < first, `training should reduce the loss (${first} → ${last})`);
    assert.ok(growthMiB < 40, `resident memory grew by ${growthMiB.toFixed(1)} MiB over the last 800 iterations`);
  });
}
