/**
 * AdamW against torch.optim.AdamW (fixture test/fixtures/unet/adamw.safetensors from
 * tools/gen_unet_fixture.py, with clip_grad_norm_ and a warmup+cosine learning rate) and against a float64
 * transcription of the algorithm; clipping; the LR schedule; resumable state; EMA.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as D from '../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { Linear, Parameter, init } from '../src/nn/index.js';
import { AdamW, EMA, clipGradNorm, gradNorm, warmupCosine } from '../src/train/index.js';
import { normalizedMaxError } from './helpers/compare.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'unet', 'adamw.safetensors');
const param = (values: ArrayLike<number>, shape: number[]) => new Parameter(Float32Array.from(values), shape);

for (const backendName of D.availableBackends()) {
  describe(`AdamW [${backendName}]`, () => {
    test('matches torch.optim.AdamW with clip_grad_norm_ and a warmup+cosine schedule', async () => {
      D.setBackend(backendName);
      const fx = parseSafetensors(readFileSync(FIXTURE));
      const T = (k: string) => { const t = fx.tensors.get(k); assert.ok(t, k); return t; };
      const hyper = JSON.parse(fx.metadata.hyper), steps = Number(fx.metadata.steps), maxNorm = Number(fx.metadata.max_norm);
      const noGradAt = JSON.parse(fx.metadata.no_grad) as Record<string, number[]>;
      const schedule = warmupCosine(JSON.parse(fx.metadata.schedule));
      const names = ['a', 'b'];
      const ps = new Map(names.map((n) => [n, param(T(`init.${n}`).data, T(`init.${n}`).shape)]));
      const opt = new AdamW([...ps], { lr: hyper.lr, betas: [hyper.beta1, hyper.beta2], eps: hyper.eps, weightDecay: hyper.weightDecay });
      const lrs = T('lr').data, norms = T('norm').data;
      for (let k = 0; k < steps; k++) {
        const lr = schedule(k);
        assert.ok(Math.abs(lr - lrs[k]) <= 1e-7 * lrs[k], `lr at step ${k}: ${lr} vs ${lrs[k]}`);
        for (const [n, p] of ps) {
          const g = fx.tensors.get(`grad.${k}.${n}`);
          assert.equal(!g, (noGradAt[n] ?? []).includes(k));
          p.grad = g ? D.tensor(Float32Array.from(g.data), g.shape) : null;
        }
        const norm = clipGradNorm([...ps], maxNorm).item();
        assert.ok(Math.abs(norm - norms[k]) <= 1e-5 * norms[k], `norm at step ${k}: ${norm} vs ${norms[k]}`);
        opt.step(lr);
        for (const [n, p] of ps) {
          const err = normalizedMaxError(p.toArray(), T(`after.${k}.${n}`).data);
          assert.ok(err < 2e-6, `step ${k} ${n}: error ${err}`);
        }
      }
      const st = (await opt.stateDict());
      assert.deepEqual(st.steps, { a: 6, b: 5 });
      for (const n of names) {
        for (const key of [`exp_avg.${n}`, `exp_avg_sq.${n}`]) {
          const err = normalizedMaxError(st.tensors.get(key)!.data, T(key).data);
          assert.ok(err < 1e-5, `${key}: error ${err}`);
        }
      }
    });

    test('float64 transcription of AdamW on a quadratic (weight decay, bias correction)', async () => {
      D.setBackend(backendName);
      const n = 7, a = Array.from({ length: n }, (_, i) => 0.5 + i), c = Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
      const p0 = Array.from({ length: n }, (_, i) => Math.cos(3 * i));
      const p = param(p0, [n]);
      const [lr, b1, b2, eps, wd] = [0.1, 0.8, 0.95, 1e-6, 0.05];
      const opt = new AdamW([p], { lr, betas: [b1, b2], eps, weightDecay: wd });
      const ref = [...p0], m = new Array(n).fill(0), v = new Array(n).fill(0);
      for (let step = 1; step <= 25; step++) {
        const g32 = Float32Array.from(p.values, (x, i) => a[i] * (x - c[i]));
        p.grad = D.tensor(g32, [n]);
        opt.step();
        const g = ref.map((x, i) => a[i] * (x - c[i]));
        for (let i = 0; i < n; i++) {
          ref[i] *= 1 - lr * wd;
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step;
          ref[i] -= (lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps);
        }
      }
      const err = normalizedMaxError(p.toArray(), ref);
      assert.ok(err < 1e-5, `error ${err}`);
      const f = (q: ArrayLike<number>) => a.reduce((s, ai, i) => s + 0.5 * ai * (q[i] - c[i]) ** 2, 0);
      assert.ok(f(p.toArray()) < 0.1 * f(p0), `objective ${f(p0)} → ${f(p.toArray())}`);
    });
  });
}

describe('AdamW state', () => {
  test('resume: 3 steps, save to safetensors, load into a fresh optimizer, 3 more = 6 straight', async () => {
    const gen = new D.Generator(4);
    const mk = () => new Linear(5, 3, { gen: new D.Generator(1) });
    const grads = Array.from({ length: 6 }, () => [D.randn([3, 5], gen), D.randn([3], gen)]);
    const run = (model: Linear, opt: AdamW, from: number, to: number) => {
      for (let k = from; k < to; k++) {
        [model.weight.grad, model.bias!.grad] = grads[k];
        opt.step(0.01 * (k + 1));
      }
    };
    const straight = mk(), optS = new AdamW(straight, { weightDecay: 0.1 });
    run(straight, optS, 0, 6);

    const first = mk(), optF = new AdamW(first, { weightDecay: 0.1 });
    run(first, optF, 0, 3);
    const st = (await optF.stateDict());
    const entries: [string, { shape: readonly number[]; data: Float32Array }][] = [
      ...[...first.stateDict()].map(([k, e]): [string, typeof e] => [`model.${k}`, e]), ...st.tensors];
    const bytes = serializeSafetensors(new Map(entries), { optim: JSON.stringify({ hyper: st.hyper, steps: st.steps }) });
    const file = parseSafetensors(bytes);
    const meta = JSON.parse(file.metadata.optim);
    const resumed = mk();
    resumed.loadStateDict(new Map([...file.tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice(6), t])));
    const optR = new AdamW(resumed, { lr: 123, weightDecay: 0 });
    optR.loadStateDict({ ...meta, tensors: new Map([...file.tensors].filter(([k]) => k.startsWith('exp_avg'))) });
    assert.equal(optR.weightDecay, 0.1);
    assert.equal(optR.stepCount, 3);
    run(resumed, optR, 3, 6);
    assert.deepEqual(resumed.stateDict(), straight.stateDict());
    assert.throws(() => optR.loadStateDict({ ...meta, tensors: new Map() }), /missing exp_avg\.weight/);
  });

  test('decay filter, skipped parameters, validation', async () => {
    const w = param([1, 1], [2]), b = param([1, 1], [2]);
    const opt = new AdamW([['w', w], ['b', b]], { lr: 0.1, weightDecay: 0.5, decay: (name) => name === 'w' });
    w.grad = D.zeros([2]);
    b.grad = D.zeros([2]);
    opt.step();
    const w1 = Math.fround(0.95);
    assert.deepEqual(w.toArray(), [w1, w1]); // decoupled decay only: p·(1 − lr·wd)
    assert.deepEqual(b.toArray(), [1, 1]);
    w.grad = null;
    opt.step();
    assert.deepEqual(w.toArray(), [w1, w1], 'no gradient: untouched');
    assert.deepEqual((await opt.stateDict()).steps, { w: 1, b: 2 });
    assert.throws(() => new AdamW([w, w]), /listed twice/);
    assert.throws(() => new AdamW([D.zeros([2])]), /does not require gradients/);
    assert.throws(() => new AdamW([w], { lr: -1 }), /invalid learning rate/);
  });
});

describe('clipGradNorm', () => {
  test('returns the pre-clip norm and scales to maxNorm; leaves small gradients alone', async () => {
    const a = param([0, 0], [2]), b = param([0], [1]);
    a.grad = D.tensor([3, 0]);
    b.grad = D.tensor([4]);
    assert.equal(gradNorm([a, b]).item(), 5);
    assert.equal(clipGradNorm([a, b], 10).item(), 5);
    assert.deepEqual([a.grad.toArray(), b.grad.toArray()], [[3, 0], [4]]);
    assert.equal(clipGradNorm([a, b], 1).item(), 5);
    assert.ok(Math.abs(gradNorm([a, b]).item() - 1) < 1e-6);
    assert.ok(Math.abs(a.grad.toArray()[0] - 0.6) < 1e-6);
  });

  test('gradients handed to several leaves by one rule are stored apart and each scaled once', async () => {
    const a = param([1, 2], [2]), b = param([3, 4], [2]);
    D.add(a, b).sum().backward(); // add's rule passes one gradient tensor to both inputs
    assert.notEqual(a.grad!.data, b.grad!.data);
    const norm = clipGradNorm([a, b], 1).item();
    assert.ok(Math.abs(norm - 2) < 1e-12);
    assert.ok(Math.abs(a.grad!.toArray()[0] - 0.5) < 1e-6 && Math.abs(b.grad!.toArray()[0] - 0.5) < 1e-6);
  });
});

describe('warmupCosine', () => {
  test('linear warmup, cosine to minLr, held after', async () => {
    const f = warmupCosine({ baseLr: 1, warmupSteps: 4, totalSteps: 14, minLr: 0.1 });
    assert.deepEqual([0, 1, 2, 3].map(f), [0.25, 0.5, 0.75, 1]);
    assert.equal(f(4), 1);
    assert.ok(Math.abs(f(9) - 0.55) < 1e-12); // halfway: (1 + 0.1) / 2
    assert.ok(Math.abs(f(14) - 0.1) < 1e-12);
    assert.ok(Math.abs(f(1000) - 0.1) < 1e-12);
    const noWarm = warmupCosine({ baseLr: 2, warmupSteps: 0, totalSteps: 10 });
    assert.equal(noWarm(0), 2);
    assert.throws(() => warmupCosine({ baseLr: 1, warmupSteps: 5, totalSteps: 4 }), /warmupSteps ≤ totalSteps/);
  });
});

describe('EMA', () => {
  test('shadow follows decay·shadow + (1−decay)·param; warmup decay (1+n)/(10+n)', async () => {
    const p = param([0, 10], [2]);
    const ema = new EMA([['p', p]], { decay: 0.9 });
    p.assign([1, 0]);
    ema.update();
    ema.swap();
    const got = p.toArray();
    ema.swap();
    assert.ok(Math.abs(got[0] - 0.1) < 1e-6 && Math.abs(got[1] - 9) < 1e-6, String(got));
    assert.deepEqual(p.toArray(), [1, 0]);
    const w = new EMA([p], { decay: 0.999, warmup: true });
    assert.equal(w.currentDecay(), 0.1);
    w.update();
    assert.equal(w.currentDecay(), 2 / 11);
    w.numUpdates = 10000;
    assert.equal(w.currentDecay(), 0.999);
  });

  test('withWeights swaps in and back (also on throw); state round trip; tensors load into the model', async () => {
    const model = new Linear(3, 2, { gen: new D.Generator(0) });
    const ema = new EMA(model, { decay: 0.5 });
    const trained = model.stateDict();
    model.weight.assign(model.weight.toArray().map((v) => v + 1));
    ema.update();
    const training = model.stateDict();
    const inside = ema.withWeights(() => model.stateDict());
    assert.deepEqual(model.stateDict(), training);
    assert.ok(Math.abs(inside.get('weight')!.data[0] - (trained.get('weight')!.data[0] + 0.5)) < 1e-6);
    assert.throws(() => ema.withWeights(() => { throw new Error('boom'); }), /boom/);
    assert.deepEqual(model.stateDict(), training);
    assert.equal(ema.isSwapped, false);

    const st = (await ema.stateDict());
    assert.deepEqual([...st.tensors.keys()], ['weight', 'bias']);
    const other = new EMA(model, { decay: 0.1 });
    other.loadStateDict(st);
    assert.equal(other.decay, 0.5);
    assert.equal(other.numUpdates, 1);
    assert.deepEqual((await other.stateDict()), st);
    const copy = new Linear(3, 2);
    copy.loadStateDict(st.tensors);
    assert.deepEqual(copy.stateDict(), inside);
    ema.copyTo();
    assert.deepEqual(model.stateDict(), inside);
    assert.throws(() => other.loadStateDict({ ...st, tensors: new Map() }), /missing weight/);
  });

  test('async withWeights swaps back after the promise settles', async () => {
    const p = param([1], [1]);
    const ema = new EMA([p], { decay: 0 });
    p.assign([5]);
    const seen = await ema.withWeights(async () => { await new Promise((r) => setTimeout(r, 1)); return p.toArray()[0]; });
    assert.equal(seen, 1);
    assert.deepEqual(p.toArray(), [5]);
  });
});

test('init helpers keep shapes', async () => {
  assert.deepEqual(init.kaimingUniform([4, 2, 3, 3], new D.Generator(0)).shape, [4, 2, 3, 3]);
});
