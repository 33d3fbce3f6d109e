/** Classifier-free guidance, inpainting, image-to-image and x_0 clipping inside the samplers (exact denoisers). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Generator, Tensor, randn, tensor } from '../src/tensor/index.js';
import {
  type Model, classifierFreeGuidance, ddim, ddpm, dpmSolverPlusPlus, euler, heun, makeSchedule, predictorCorrector, sample,
} from '../src/diffusion/index.js';
import { type MixtureSpec, componentWeights, gaussianOracle, mixtureOracle, moments, sampleMixture } from './oracles/gaussians.js';

const B = 2000;
const schedule = makeSchedule({ kind: 'linear', T: 1000 });
const MIX: MixtureSpec = { weights: [0.5, 0.3, 0.2], means: [[-2, 0], [2, 0], [0, 2.5]], stds: [[0.3, 0.5], [0.4, 0.3], [0.5, 0.25]] };
const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');

/** A class-conditional exact model: class k ∈ {0, 1, 2} is component k; class 3 (the null class) is the whole mixture. */
function conditionalOracle(calls: number[] = []): Model {
  const parts = MIX.weights.map((_, k) => mixtureOracle(schedule, { weights: [1], means: [MIX.means[k]], stds: [MIX.stds[k]] }));
  const all = mixtureOracle(schedule, MIX);
  return (x: Tensor, t: Tensor, cond?: Tensor) => {
    calls.push(x.shape[0]);
    if (!cond || cond.dtype !== 'int32') throw new Error('conditionalOracle: needs int32 classes');
    const outs = [...parts, all].map((m) => m(x, t));
    const out = new Float32Array(x.size);
    for (let i = 0; i < x.shape[0]; i++) for (let d = 0; d < 2; d++) out[2 * i + d] = outs[cond.data[i]].data[2 * i + d];
    return tensor(out, x.shape);
  };
}

const classes = (k: number, n = B) => new Tensor(new Int32Array(n).fill(k), [n]);
const NULL = new Tensor(new Int32Array([3]), [1]);

describe('classifier-free guidance', () => {
  test('scale 1 samples the class, scale 0 the unconditional data, scale > 1 concentrates the class', () => {
    const noise = randn([B, 2], new Generator(1));
    const run = (scale: number) => sample(ddim(classifierFreeGuidance(conditionalOracle(), { scale, nullCond: NULL }), schedule, noise, { steps: 50, cond: classes(1) }));
    const c1 = run(1);
    const w1 = componentWeights(MIX, c1);
    assert.ok(w1[1] > 0.999, `scale 1: weights ${w1}`);
    const m1 = moments(c1);
    assert.ok(Math.abs(m1.mean[0] - 2) < 0.05 && Math.abs(m1.mean[1]) < 0.05, `scale 1 mean ${m1.mean}`);
    assert.ok(Math.abs(m1.std[0] / 0.4 - 1) < 0.1 && Math.abs(m1.std[1] / 0.3 - 1) < 0.12, `scale 1 std ${m1.std}`);
    const w0 = componentWeights(MIX, run(0));
    w0.forEach((v, k) => assert.ok(Math.abs(v - MIX.weights[k]) < 0.04, `scale 0: weight[${k}] = ${v}`));
    const m3 = moments(run(3));
    assert.ok(m3.std[0] < 0.9 * m1.std[0] && m3.std[1] < 0.9 * m1.std[1], `scale 3 std ${m3.std} vs ${m1.std}`);
  });

  test('one batch of 2B by default, two calls when unbatched, same result; per-sample null rows accepted', () => {
    const callsA: number[] = [], callsB: number[] = [];
    const x = randn([8, 2], new Generator(2)), t = tensor(new Float32Array(8).fill(500));
    const cond = new Tensor(Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]), [8]);
    const a = classifierFreeGuidance(conditionalOracle(callsA), { scale: 2.5, nullCond: NULL })(x, t, cond);
    const b = classifierFreeGuidance(conditionalOracle(callsB), { scale: 2.5, nullCond: classes(3, 8), batched: false })(x, t, cond);
    assert.deepEqual(callsA, [16]);
    assert.deepEqual(callsB, [8, 8]);
    assert.deepEqual(a.toArray(), b.toArray());
  });

  test('learned variance: only the prediction channels are guided', () => {
    const model: Model = (x, _t, c) => tensor(Array.from({ length: x.shape[0] * 4 }, (_, i) => (i % 4 < 2 ? c!.data[i >> 2] : 10 + c!.data[i >> 2])), [x.shape[0], 4]);
    const out = classifierFreeGuidance(model, { scale: 3, nullCond: tensor([0], [1]), learnedVariance: true })(randn([2, 2]), tensor([1, 1]), tensor([1, 2], [2]));
    // pred: 0 + 3·(c − 0); variance channels: the conditional ones.
    assert.deepEqual(out.toArray(), [3, 3, 11, 11, 6, 6, 12, 12]);
  });

  test('bad input', () => {
    const g = classifierFreeGuidance(conditionalOracle(), { scale: 2, nullCond: NULL });
    const x = randn([4, 2]), t = tensor([1, 1, 1, 1]);
    assert.throws(() => g(x, t), oneLine(/^classifierFreeGuidance: the guided model needs a cond/));
    assert.throws(() => g(x, t, classes(1, 3)), oneLine(/^classifierFreeGuidance: cond \[3\] does not have the batch size 4 of x_t \[4, 2\]$/));
    assert.throws(() => classifierFreeGuidance(conditionalOracle(), { scale: 2, nullCond: tensor([3]) })(x, t, classes(1, 4)),
      oneLine(/^classifierFreeGuidance: null condition float32 \[1\] does not match cond int32 \[4\] \(expected one row or 4\)$/));
    assert.throws(() => classifierFreeGuidance(conditionalOracle(), { scale: NaN, nullCond: NULL }), /scale must be a finite number/);
  });
});

describe('inpainting', () => {
  // Independent dimensions: with x_0 known, x_1 must follow its own marginal N(−0.5, 0.25²), whatever x_0 is.
  const MEAN = [1, -0.5], STD = [0.5, 0.25];
  const gauss = gaussianOracle(schedule, MEAN, STD);
  const known = tensor(Array.from({ length: 2 * B }, (_, i) => (i % 2 === 0 ? 1.7 : 99)), [B, 2]);
  const mask = tensor([1, 0], [1, 2]);
  const makers: [string, (n: Tensor, g: Generator) => ReturnType<typeof ddim>][] = [
    ['DDPM, 250 steps', (n, g) => ddpm(gauss, schedule, n, { gen: g, steps: 250, inpaint: { known, mask } })],
    ['DDIM, 100 steps', (n, g) => ddim(gauss, schedule, n, { gen: g, steps: 100, inpaint: { known, mask } })],
    ['DPM-Solver++(2M), 20 steps', (n, g) => dpmSolverPlusPlus(gauss, schedule, n, { gen: g, steps: 20, inpaint: { known, mask } })],
    ['Euler, 100 steps', (n, g) => euler(gauss, schedule, n, { gen: g, steps: 100, inpaint: { known, mask } })],
    ['predictor–corrector, 250 steps', (n, g) => predictorCorrector(gauss, schedule, n, { gen: g, steps: 250, inpaint: { known, mask } })],
  ];
  for (const [name, make] of makers) {
    test(`${name}: known pixels kept exactly, the rest from the right distribution (mean ± 0.04, std ± 10 %)`, () => {
      const out = sample(make(randn([B, 2], new Generator(3)), new Generator(4)));
      for (let i = 0; i < B; i++) assert.equal(out.data[2 * i], Math.fround(1.7));
      const m = moments(out);
      assert.ok(Math.abs(m.mean[1] - MEAN[1]) < 0.04 && Math.abs(m.std[1] / STD[1] - 1) < 0.1, `${name}: ${m.mean[1]}, ${m.std[1]}`);
    });
  }

  test('bad mask or known data', () => {
    assert.throws(() => sample(ddim(gauss, schedule, randn([B, 2]), { inpaint: { known, mask: tensor([1, 0, 1], [1, 3]) } })),
      oneLine(/^ddim: inpaint mask \[1, 3\] does not broadcast to the sample \[2000, 2\]$/));
    assert.throws(() => sample(heun(gauss, schedule, randn([B, 2]), { inpaint: { known: randn([B, 3]), mask } })),
      oneLine(/^heun: inpaint known data \[2000, 3\] does not match the sample \[2000, 2\]$/));
    assert.throws(() => sample(ddpm(gauss, schedule, randn([B, 2]), { inpaint: { known, mask: tensor([2, 0], [1, 2]) } })),
      oneLine(/^ddpm: inpaint mask values must lie in \[0, 1\], found 2$/));
  });
});

describe('image-to-image', () => {
  const MEAN = [1, -0.5], STD = [0.5, 0.25];
  const gauss = gaussianOracle(schedule, MEAN, STD);
  const data = sampleMixture({ weights: [1], means: [MEAN], stds: [STD] }, B, new Generator(7));
  const change = (x: Tensor) => Math.sqrt(x.toArray().reduce((a, v, i) => a + (v - data.data[i]) ** 2, 0) / x.size);

  test('inputs from the data stay data-distributed; the change grows with strength', () => {
    const changes = [0.05, 0.3, 1].map((strength) => {
      const out = sample(ddim(gauss, schedule, randn([B, 2], new Generator(8)), { steps: 100, init: { x0: data, strength }, gen: new Generator(9) }));
      const m = moments(out);
      for (let d = 0; d < 2; d++) {
        assert.ok(Math.abs(m.mean[d] - MEAN[d]) < 0.04 && Math.abs(m.std[d] / STD[d] - 1) < 0.1, `strength ${strength}: ${m.mean}, ${m.std}`);
      }
      return change(out);
    });
    assert.ok(changes[0] < changes[1] && changes[1] < changes[2], `changes ${changes}`);
    assert.ok(changes[0] < 0.2 && changes[2] > 0.5, `changes ${changes}`);
    // The σ-samplers and DDPM start from the input too.
    for (const make of [(g: Generator) => heun(gauss, schedule, randn([B, 2], g), { steps: 20, init: { x0: data, strength: 0.1 }, gen: g }),
      (g: Generator) => ddpm(gauss, schedule, randn([B, 2], g), { steps: 100, init: { x0: data, strength: 0.1 }, gen: g })]) {
      const out = sample(make(new Generator(10)));
      const sd = moments(out).std[1], c = change(out);
      assert.ok(Math.abs(sd / STD[1] - 1) < 0.1 && c < 0.85 * changes[2], `std ${sd}, change ${c} (strength 1: ${changes[2]})`);
    }
  });

  test('events count only the steps run', () => {
    let last = 0;
    sample(ddim(gauss, schedule, randn([4, 2]), { steps: 50, init: { x0: data.narrow(0, 0, 4), strength: 0.5 } }), (e) => { last = e.totalSteps; });
    assert.equal(last, 25);
  });

  test('out-of-range strength', () => {
    const x0 = data.narrow(0, 0, 4);
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { init: { x0, strength: 0 } })), oneLine(/^ddim: strength 0 is out of range \(0, 1\]$/));
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { init: { x0, strength: 1.5 } })), oneLine(/^ddim: strength 1.5 is out of range \(0, 1\]$/));
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { steps: 10, init: { x0, strength: 0.05 } })),
      oneLine(/^ddim: strength 0.05 runs no step of 10; raise it to at least 0.1$/));
    assert.throws(() => sample(euler(gauss, schedule, randn([4, 2]), { init: { x0: randn([4, 3]), strength: 0.5 } })),
      oneLine(/^euler: init image \[4, 3\] does not match the sample \[4, 2\]$/));
  });
});

describe('x_0 clipping in the samplers', () => {
  test('static clipping and dynamic thresholding keep x̂_0 and the sample in [−1, 1]', () => {
    const mix = mixtureOracle(schedule, MIX); // the data reach far outside [−1, 1]
    for (const clip of [{ kind: 'clip' as const }, { kind: 'dynamic' as const, percentile: 0.9 }]) {
      let maxPred = 0;
      const out = sample(ddim(mix, schedule, randn([200, 2], new Generator(11)), { steps: 20, clip }), (e) => {
        maxPred = Math.max(maxPred, ...e.x0Pred.toArray().map(Math.abs));
      });
      assert.ok(maxPred <= 1 + 1e-6, `${clip.kind}: max |x̂_0| = ${maxPred}`);
      assert.ok(Math.max(...out.toArray().map(Math.abs)) <= 1 + 1e-5, clip.kind);
    }
    const free = sample(ddim(mix, schedule, randn([200, 2], new Generator(11)), { steps: 20 }));
    assert.ok(Math.max(...free.toArray().map(Math.abs)) > 1.5, 'without clipping the samples leave [−1, 1]');
  });
});
