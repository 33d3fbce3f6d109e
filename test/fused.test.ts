/**
 * The kernel table and the fused fast paths.
 * - Every fused kernel a backend provides matches the engine's composite (the same backend with its fused
 *   kernels switched off): forward values and every input gradient.
 * - A primitives-only backend trains the tiny UNet: 5 AdamW steps, losses within 1e-5 relative of the fused
 *   path (the PyTorch fixture suite on primitives-only backends is in parity.test.ts).
 * - A backend or an addon that lacks a kernel of the table is refused when it is registered or loaded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import * as D from '../src/index.js';
import { type Backend, FUSED_NAMES, KERNELS, PRIMITIVE_NAMES, STORAGE_NAMES, missingKernels } from '../src/backends/backend.js';
import { jsBackend } from '../src/backends/js/index.js';
import { NATIVE_KERNELS, adaptAddon, type NativeAddon } from '../src/backends/native/index.js';
import { UNet, unetPreset } from '../src/nn/index.js';
import { AdamW } from '../src/train/index.js';
import { normalizedMaxError } from './helpers/compare.js';
import { engineBackends } from './helpers/backends.js';

const backends = await engineBackends();

/** Runs `build` on fresh inputs and returns its output and the gradients of sum(out · r), all read back. */
async function run(inputs: () => D.Tensor[], build: (xs: D.Tensor[]) => D.Tensor): Promise<Float32Array[]> {
  const xs = inputs();
  const out = build(xs);
  const r = D.randn(out.shape, new D.Generator(99));
  D.sum(D.mul(out, r)).backward();
  const res = [Float32Array.from(await out.read())];
  for (const x of xs) if (x.requiresGrad) res.push(Float32Array.from(await x.grad!.read()));
  return res;
}

const gen = (seed: number) => new D.Generator(seed);
const leaf = (shape: number[], seed: number, scale = 1) => D.randn(shape, gen(seed)).mul(scale).detach();
const param = (shape: number[], seed: number, scale = 1) => { const t = leaf(shape, seed, scale); t.requiresGrad = true; return t; };

// one op over the norm kernels; native also applies the norm inside the convolution (conv2dNormed)
const NORM_CONV = ['groupNorm', 'groupNormBackward'];

/** Fused kernel(s) exercised, inputs, and the op. */
const CASES: [string, string[], () => D.Tensor[], (xs: D.Tensor[]) => D.Tensor][] = [
  ['sigmoid', ['activation'], () => [param([3, 257], 1, 4)], ([x]) => D.sigmoid(x)],
  ['silu', ['activation'], () => [param([3, 257], 2, 4)], ([x]) => D.silu(x)],
  ['gelu', ['activation'], () => [param([3, 257], 3, 4)], ([x]) => D.gelu(x)],
  ['softmax (last axis)', ['softmax'], () => [param([6, 50], 4, 3)], ([x]) => D.softmax(x, -1)],
  ['softmax (axis 1 of 3)', ['softmax'], () => [param([2, 7, 5], 5, 3)], ([x]) => D.softmax(x, 1)],
  ['logSoftmax', ['logSoftmax'], () => [param([6, 50], 6, 3)], ([x]) => D.logSoftmax(x, -1)],
  ['groupNorm', ['groupNorm'], () => [param([2, 8, 5, 5], 7), param([8], 8), param([8], 9)],
    ([x, g, b]) => D.groupNorm(x, 4, g, b)],
  ['groupNorm + SiLU', ['groupNorm'], () => [param([2, 8, 5, 5], 10), param([8], 11), param([8], 12)],
    ([x, g, b]) => D.groupNorm(x, 2, g, b, { silu: true })],
  ['groupNorm without affine', ['groupNorm'], () => [param([3, 6, 9], 13)], ([x]) => D.groupNorm(x, 3, null, null, { silu: true })],
  ['layerNorm', ['layerNorm'], () => [param([4, 3, 33], 14), param([33], 15), param([33], 16)],
    ([x, g, b]) => D.layerNorm(x, g, b)],
  ['layerNorm without affine', ['layerNorm'], () => [param([5, 17], 17)], ([x]) => D.layerNorm(x)],
  ['upsampleNearest2x', ['upsampleNearest2x'], () => [param([2, 3, 5, 7], 18)], ([x]) => D.upsampleNearest2x(x)],
  ['avgPool2x2', ['avgPool2x2'], () => [param([2, 3, 6, 8], 19)], ([x]) => D.avgPool2x2(x)],
  // the norm applied inside the convolution: Winograd's input copy at 12×12 (both passes) and at 7×7 (the weight
  // gradient's direct kernel: stored first), a strided convolution (stored first), a norm without affine
  ['groupNorm + SiLU → conv2d 3×3', NORM_CONV, () => [param([2, 16, 12, 12], 20), param([16], 21), param([16], 22),
    param([8, 16, 3, 3], 23, 0.2), param([8], 24)],
  ([x, g, b, w, bias]) => D.groupNormConv2d(x, 4, g, b, { silu: true }, w, bias, { padding: 1 })],
  ['groupNorm + SiLU → conv2d 3×3 at 7×7', NORM_CONV, () => [param([3, 8, 7, 7], 25), param([8], 26), param([8], 27),
    param([16, 8, 3, 3], 28, 0.2), param([16], 29)],
  ([x, g, b, w, bias]) => D.groupNormConv2d(x, 2, g, b, { silu: true }, w, bias, { padding: 1 })],
  ['groupNorm + SiLU → conv2d 3×3 + image bias + residual', NORM_CONV, () => [param([2, 16, 12, 12], 32), param([16], 33),
    param([16], 34), param([8, 16, 3, 3], 35, 0.2), param([8], 36), param([2, 8], 37), param([2, 8, 12, 12], 38)],
  ([x, g, b, w, bias, temb, res]) => D.groupNormConv2d(x, 4, g, b, { silu: true }, w, bias, { padding: 1, imageBias: temb, residual: res })],
  ['groupNorm → conv2d 3×3 stride 2, no affine', NORM_CONV, () => [param([2, 8, 9, 9], 30), param([8, 8, 3, 3], 31, 0.2)],
    ([x, w]) => D.groupNormConv2d(x, 4, null, null, {}, w, null, { stride: 2, padding: 1 })],
];

for (const name of backends) {
  describe(`fused kernels against their composites [${name}]`, () => {
    const tol = name === 'webgpu' ? 2e-5 : 1e-5;
    for (const [label, kernels, inputs, build] of CASES) {
      test(label, async (t) => {
        const be = D.setBackend(name) as Backend<unknown>;
        if (!kernels.every((k) => typeof (be as unknown as Record<string, unknown>)[k] === 'function')) {
          t.skip(`${name} has no fused ${kernels.join(', ')}`);
          return;
        }
        const fused = await run(inputs, build);
        D.setBackend(name, { fused: false });
        const composite = await run(inputs, build);
        D.setBackend(name);
        assert.equal(fused.length, composite.length);
        fused.forEach((f, i) => {
          const err = normalizedMaxError(f, composite[i]);
          assert.ok(err <= tol, `${label} on ${name}: ${i === 0 ? 'output' : `gradient ${i}`} differs by ${err.toExponential(2)}`);
        });
      });
    }

    test('AdamW and the EMA update (in-place kernels) against engine ops', async (t) => {
      const be = D.setBackend(name) as Backend<unknown>;
      if (!be.adamW || !be.lerpInPlace) { t.skip(`${name} has no fused adamW / lerpInPlace`); return; }
      const steps = async (fused: boolean): Promise<Float32Array[]> => {
        D.setBackend(name, { fused });
        const p = param([7, 33], 20);
        const opt = new AdamW([['p', p]], { lr: 1e-2, weightDecay: 0.1 });
        const ema = new D.EMA([['p', p]], { decay: 0.9 });
        for (let i = 0; i < 4; i++) {
          D.scope(() => { D.sum(D.mul(p, p)).backward(); opt.step(); opt.zeroGrad(); });
          ema.update();
        }
        const st = await opt.stateDict(), es = await ema.stateDict();
        return [Float32Array.from(await p.read()), st.tensors.get('exp_avg.p')!.data as Float32Array,
          st.tensors.get('exp_avg_sq.p')!.data as Float32Array, es.tensors.get('p')!.data as Float32Array];
      };
      const fused = await steps(true), composite = await steps(false);
      D.setBackend(name);
      ['p', 'm', 'v', 'ema'].forEach((what, i) => {
        const err = normalizedMaxError(fused[i], composite[i]);
        assert.ok(err <= 1e-5, `${what} differs by ${err.toExponential(2)}`);
      });
    });
  });
}

describe('a primitives-only backend trains the tiny UNet', () => {
  // One CPU backend (native where it loads): the js backend's UNet step is slow enough to dominate the suite.
  for (const name of [backends.includes('native') ? 'native' as const : 'js' as const]) {
    test(`5 AdamW steps on ${name}: losses within 1e-5 relative of the fused path`, () => {
      const losses = (fused: boolean): number[] => {
        D.setBackend(name, { fused });
        const model = new UNet(unetPreset('tiny', { numClasses: 10 }), { seed: 3 });
        const opt = new AdamW(model, { lr: 2e-3 });
        const g = gen(5), out: number[] = [];
        for (let s = 0; s < 5; s++) {
          const x0 = D.randn([4, 1, 28, 28], g), noise = D.randn([4, 1, 28, 28], g);
          const t = D.tensor([100, 400, 700, 900].map((v) => v + s), [4]);
          const xt = D.add(D.mul(x0, 0.8), D.mul(noise, 0.6));
          const loss = D.mseLoss(model.forward(xt, t, D.tensor([1, 3, 5, 7], [4], { dtype: 'int32' })), noise);
          loss.backward();
          opt.step();
          opt.zeroGrad();
          out.push(loss.item());
        }
        return out;
      };
      const fused = losses(true), primitives = losses(false);
      D.setBackend(name);
      fused.forEach((l, i) => {
        const rel = Math.abs(primitives[i] - l) / Math.abs(l);
        assert.ok(rel <= 1e-5, `step ${i}: fused ${l}, primitives only ${primitives[i]} (relative ${rel.toExponential(2)})`);
      });
    });
  }
});

describe('the kernel table', () => {
  test('primitives, storage and fused kernels are disjoint and cover the table; at most 20 required members', () => {
    const all = [...PRIMITIVE_NAMES, ...STORAGE_NAMES, ...FUSED_NAMES];
    assert.deepEqual([...all].sort(), Object.keys(KERNELS).sort());
    assert.ok(PRIMITIVE_NAMES.length + STORAGE_NAMES.length <= 20, `${PRIMITIVE_NAMES.length + STORAGE_NAMES.length} required members`);
  });

  test('a backend lacking a primitive is refused at registration, naming it', () => {
    const { matmul: _m, ...partial } = jsBackend;
    assert.deepEqual(missingKernels(partial), ['matmul']);
    assert.deepEqual(missingKernels(jsBackend as unknown as Record<string, unknown>), []);
    assert.deepEqual(missingKernels(D.withoutFused(jsBackend) as unknown as Record<string, unknown>), []);
  });

  test('an addon lacking a kernel of the native name table is refused when it loads', () => {
    const fake = Object.fromEntries(NATIVE_KERNELS.map((k) => [k, () => undefined])) as unknown as NativeAddon;
    assert.ok(!('missing' in adaptAddon(fake)));
    const { groupNormBackward: _g, conv2d: _c, ...lacking } = fake as unknown as Record<string, unknown>;
    const r = adaptAddon(lacking as unknown as NativeAddon);
    assert.ok('missing' in r);
    assert.deepEqual([...r.missing].sort(), ['conv2d', 'groupNormBackward']);
  });
});
