/** Training objectives and the variational bound. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Generator, Tensor, concat, mul, randn, tensor, zeros } from '../src/tensor/index.js';
import {
  type Model, bitsPerDim, discretizedGaussianLogLikelihood, makeSchedule, minSnrWeights, normalKl, priorBpd, trainingLoss,
  velocity, qSample,
} from '../src/diffusion/index.js';
import { gaussianOracle, gaussianSpec, sampleMixture } from './oracles/gaussians.js';

const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');

/** 8-bit quantization of data in [−1, 1]. */
function quantize(x: Tensor): Tensor {
  return tensor(x.data.map((v) => Math.round((Math.min(Math.max(v, -1), 1) + 1) * 127.5) / 127.5 - 1), x.shape);
}

describe('training losses', () => {
  const s = makeSchedule({ kind: 'cosine', T: 100 });
  const gen = new Generator(2);
  const x0 = randn([8, 2], gen), noise = randn([8, 2], gen);
  const t = [0, 5, 20, 40, 60, 80, 95, 99];

  test('each target is what the loss regresses to (a model returning the target has zero loss)', () => {
    const targets: Record<string, Tensor> = { epsilon: noise, x0, v: velocity(s, x0, noise, t) };
    for (const prediction of ['epsilon', 'x0', 'v'] as const) {
      const model: Model = () => targets[prediction];
      const r = trainingLoss(model, s, x0, { prediction, t, noise });
      assert.ok(r.loss.item() < 1e-12, `${prediction}: ${r.loss.item()}`);
      assert.deepEqual(Array.from(r.t), t);
      const off = trainingLoss(() => zeros([8, 2]), s, x0, { prediction, t, noise });
      const want = targets[prediction].toArray().reduce((a, v) => a + v * v, 0) / 16;
      assert.ok(Math.abs(off.loss.item() - want) < 1e-5, `${prediction}: MSE against zero`);
    }
  });

  test('the loss is a scalar tensor whose gradient is the analytic one; timesteps are uniform draws', () => {
    const w = tensor([0.5], [1], { requiresGrad: true });
    const model: Model = (xt) => mul(xt, w);
    const r = trainingLoss(model, s, x0, { t, noise });
    assert.deepEqual(r.loss.shape, []);
    r.loss.backward();
    const xt = qSample(s, x0, t, noise);
    const g = xt.toArray().reduce((a, v, i) => a + (2 * (0.5 * v - noise.data[i]) * v) / 16, 0);
    assert.ok(Math.abs(w.grad!.item() - g) < 1e-5);
    const draws = trainingLoss(model, s, randn([4000, 1], gen), { gen: new Generator(9) }).t;
    const m = draws.reduce((a, v) => a + v, 0) / draws.length;
    assert.ok(draws.every((v) => Number.isInteger(v) && v >= 0 && v < 100));
    assert.ok(Math.abs(m - 49.5) < 4 * (28.9 / Math.sqrt(4000)), `mean timestep ${m}`);
  });

  test('min-SNR-γ weights (Hang et al. 2023) per target, and the weighted loss', () => {
    const snr = [0.01, 1, 5, 100, 0];
    assert.deepEqual(Array.from(minSnrWeights(snr, 5, 'epsilon')), [1, 1, 1, 0.05, 1]);
    assert.deepEqual(Array.from(minSnrWeights(snr, 5, 'x0')), [0.01, 1, 5, 5, 0]);
    assert.deepEqual(Array.from(minSnrWeights(snr, 5, 'v')), [0.01 / 1.01, 0.5, 5 / 6, 5 / 101, 0]);
    const model: Model = () => zeros([8, 2]);
    const r = trainingLoss(model, s, x0, { t, noise, weighting: { kind: 'minSnr', gamma: 5 } });
    const w = minSnrWeights(t.map((u) => s.snr[u]), 5, 'epsilon');
    const want = Array.from({ length: 8 }, (_, i) => w[i] * r.mse.data[i]).reduce((a, b) => a + b, 0) / 8;
    assert.ok(Math.abs(r.loss.item() - want) < 1e-6);
  });

  test('hybrid loss: L_vlb reaches only the variance channels (stop-gradient on the mean)', () => {
    const xq = quantize(x0);
    const pred = randn([8, 2], new Generator(4), { requiresGrad: true });
    const v = tensor(new Float32Array(16).fill(0.2), [8, 2], { requiresGrad: true });
    const model: Model = () => concat([pred, v], 1);
    const hybrid = trainingLoss(model, s, xq, { t, noise, variance: 'learnedRange', lambdaVlb: 0.5 });
    hybrid.loss.backward();
    const gHybrid = pred.grad!.toArray();
    assert.ok(v.grad && v.grad.toArray().some((g) => Math.abs(g) > 1e-6), 'v gets a gradient from L_vlb');
    pred.grad = null;
    const simple = trainingLoss(model, s, xq, { t, noise, variance: 'learnedRange', lambdaVlb: 0 });
    simple.loss.backward();
    assert.deepEqual(gHybrid, pred.grad!.toArray(), 'the mean gradient is the L_simple one');
    assert.ok(hybrid.vb && hybrid.vb.shape[0] === 8);
    const want = simple.loss.item() + 0.5 * 100 * (hybrid.vb!.toArray().reduce((a, b) => a + b, 0) / 8);
    assert.ok(Math.abs(hybrid.loss.item() - want) < 1e-4 * want, 'L_simple + λ·T·mean(L_t)');
  });

  test('bad input', () => {
    assert.throws(() => trainingLoss(() => zeros([8, 3]), s, x0), oneLine(/^trainingLoss: model output \[8, 3\] does not match x_t \[8, 2\]$/));
    assert.throws(() => trainingLoss(() => zeros([8, 2]), s, x0, { variance: 'learnedRange' }),
      oneLine(/^trainingLoss: model output \[8, 2\] does not match x_t \[8, 2\] with learned variance \(expected \[8, 4\]\)$/));
    assert.throws(() => trainingLoss(() => zeros([8, 2]), s, x0, { weighting: { kind: 'p2' } as never }), oneLine(/^trainingLoss: unknown weighting "p2"/));
    assert.throws(() => trainingLoss(() => zeros([8, 2]), s, x0, { t: 100 }), oneLine(/^trainingLoss: timestep 100 is out of range/));
    assert.throws(() => trainingLoss(() => zeros([8, 2]), s, x0, { noise: zeros([8, 1]) }), oneLine(/^trainingLoss: x_0 \[8, 2\] and noise \[8, 1\] differ in shape$/));
  });
});

describe('variational bound', () => {
  test('Gaussian KL: zero for equal Gaussians, the closed form otherwise', () => {
    const m1 = tensor([0.3]), m2 = tensor([-0.2]), l1 = tensor([Math.log(0.5)]), l2 = tensor([Math.log(2)]);
    assert.ok(Math.abs(normalKl(m1, l1, m1, l1).item()) < 1e-7);
    const want = 0.5 * (-1 + Math.log(2 / 0.5) + 0.5 / 2 + 0.25 / 2);
    assert.ok(Math.abs(normalKl(m1, l1, m2, l2).item() - want) < 1e-6);
  });

  test('the discretized Gaussian decoder is a distribution over the 256 bins', () => {
    const bins = tensor(Array.from({ length: 256 }, (_, k) => -1 + (2 * k) / 255));
    for (const [mu, sd] of [[0.1, 0.05], [-0.97, 0.02], [0.5, 0.3]]) {
      const ll = discretizedGaussianLogLikelihood(bins, tensor(new Float32Array(256).fill(mu)), tensor(new Float32Array(256).fill(Math.log(sd))));
      const total = ll.toArray().reduce((a, v) => a + Math.exp(v), 0);
      assert.ok(Math.abs(total - 1) < 2e-3, `mean ${mu}, std ${sd}: Σ p = ${total}`);
    }
  });

  test('with the exact denoiser and the exact reverse variance the bound is the data entropy; fixed variances are looser', () => {
    // Data: 8-bit quantized N((0.2, −0.3), diag(0.3², 0.1²)). Its entropy, 6.5022 bits/dim, was computed as
    // −Σ_bins p log₂ p with p from the normal CDF over the 256 bins of [−1, 1] (edges open), averaged over the two dims.
    const entropy = 6.5022;
    const T = 50, s = makeSchedule({ kind: 'linear', T, betaStart: 0.1 / T, betaEnd: 20 / T });
    const mean = [0.2, -0.3], std = [0.3, 0.1];
    const x0 = quantize(sampleMixture(gaussianSpec(mean, std), 2000, new Generator(3)));
    const exact = gaussianOracle(s, mean, std, { learnedVariance: true }), eps = gaussianOracle(s, mean, std);
    const learned = bitsPerDim(exact, s, x0, { variance: 'learnedRange', gen: new Generator(5) });
    const large = bitsPerDim(eps, s, x0, { variance: 'fixedLarge', gen: new Generator(5) });
    const small = bitsPerDim(eps, s, x0, { variance: 'fixedSmall', gen: new Generator(5) });
    const sd = Math.sqrt(learned.total.reduce((a, v) => a + (v - learned.mean) ** 2, 0) / 2000);
    // Tolerance: 4 standard errors of the per-sample bound (≈ 0.026 bits here).
    assert.ok(Math.abs(learned.mean - entropy) < 4 * sd / Math.sqrt(2000), `bound ${learned.mean} vs entropy ${entropy}`);
    assert.ok(large.mean > learned.mean + 0.2 && small.mean > large.mean, `learned ${learned.mean}, β ${large.mean}, β̃ ${small.mean}`);
    assert.equal(learned.terms.length, T);
    assert.ok(learned.prior[0] < 1e-3, 'L_T ≈ 0');
    assert.ok(priorBpd(s, x0).data.every((v) => v >= 0));
    assert.throws(() => bitsPerDim(eps, s, tensor([0, 2], [1, 2])), oneLine(/^bitsPerDim: x_0 must lie in \[-1, 1\] \(8-bit data scaled\), found 2$/));
  });
});
