/** Forward process, posterior, parameterizations, score, p_θ and thresholding. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Generator, Tensor, randn, tensor } from '../src/tensor/index.js';
import {
  applyX0Clip, convertPrediction, dynamicThreshold, makeSchedule, pMeanVariance, pSample, predictNoiseFromStart, predictNoiseFromV,
  predictStartFromNoise, predictStartFromV, qMeanVariance, qPosteriorMeanVariance, qSample, qStep, qStepMeanVariance, score,
  velocity,
} from '../src/diffusion/index.js';
import { gaussianOracle, moments } from './oracles/gaussians.js';

const maxAbsDiff = (a: Tensor, b: Tensor) => a.toArray().reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i])), 0);
const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');

describe('forward process', () => {
  const s = makeSchedule({ kind: 'linear', T: 1000 });

  test('chaining one-step transitions reproduces q(x_t | x_0): moments exactly, and on a sampled batch', () => {
    // Exact propagation of mean and variance through q(x_t | x_{t−1}) in float64.
    let m = 1, v = 0;
    for (let t = 0; t < 1000; t++) {
      m *= Math.sqrt(s.alphas[t]);
      v = s.alphas[t] * v + s.betas[t];
      if ([0, 9, 99, 499, 999].includes(t)) {
        assert.ok(Math.abs(m - s.sqrtAlphasCumprod[t]) < 1e-12, `mean at ${t}`);
        assert.ok(Math.abs(v - (1 - s.alphasCumprod[t])) < 1e-12, `variance at ${t}`);
      }
    }
    // A batch of 4000 copies of x_0 = (0.8, −1.5) chained for t = 0 … 299 (float32 tensors).
    const B = 4000, x0 = tensor(Array.from({ length: B * 2 }, (_, i) => (i % 2 ? -1.5 : 0.8)), [B, 2]);
    const gen = new Generator(3);
    let x = x0;
    const stops = [49, 299];
    for (let t = 0; t <= 299; t++) {
      x = qStep(s, x, t, undefined, gen);
      if (!stops.includes(t)) continue;
      const { mean, variance } = qMeanVariance(s, x0, t);
      for (const d of [0, 1]) {
        let mu = 0, q = 0;
        for (let i = 0; i < B; i++) mu += x.data[2 * i + d] / B;
        for (let i = 0; i < B; i++) q += (x.data[2 * i + d] - mu) ** 2 / (B - 1);
        const se = Math.sqrt(variance[0] / B);
        // Tolerances: 4 standard errors for the mean, 4·√(2/B) relative for the variance.
        assert.ok(Math.abs(mu - mean.data[d]) < 4 * se, `t=${t} dim ${d}: mean ${mu} vs ${mean.data[d]}`);
        assert.ok(Math.abs(q / variance[0] - 1) < 4 * Math.sqrt(2 / B), `t=${t} dim ${d}: variance ${q} vs ${variance[0]}`);
      }
    }
  });

  test('qSample and qStep with given noise are the closed forms', () => {
    const x0 = tensor([0.5, -0.25, 1, 0], [2, 2]), eps = tensor([1, 2, -1, 0.5], [2, 2]);
    const xt = qSample(s, x0, [10, 500], eps);
    const want = [10, 10, 500, 500].map((t, i) => s.sqrtAlphasCumprod[t] * x0.data[i] + s.sigmas[t] * eps.data[i]);
    assert.ok(maxAbsDiff(xt, tensor(want, [2, 2])) < 1e-6);
    const x1 = qStep(s, x0, 3, eps);
    assert.ok(maxAbsDiff(x1, tensor(x0.toArray().map((v, i) => Math.sqrt(s.alphas[3]) * v + Math.sqrt(s.betas[3]) * eps.data[i]), [2, 2])) < 1e-6);
    const mv = qStepMeanVariance(s, x0, 3);
    assert.equal(mv.variance[0], s.betas[3]);
  });

  test('the posterior q(x_{t−1} | x_t, x_0) is Gaussian conditioning of the joint of (x_{t−1}, x_t) given x_0', () => {
    const x0 = tensor([0.3, -0.7, 1.2], [3, 1]), xt = tensor([0.1, -0.4, 2.0], [3, 1]);
    const ts = [1, 250, 999];
    const post = qPosteriorMeanVariance(s, x0, xt, ts);
    ts.forEach((t, i) => {
      const abPrev = s.alphasCumprod[t - 1], ab = s.alphasCumprod[t];
      const v1 = 1 - abPrev, cov = Math.sqrt(s.alphas[t]) * v1, v2 = 1 - ab;
      const mean = Math.sqrt(abPrev) * x0.data[i] + (cov / v2) * (xt.data[i] - Math.sqrt(ab) * x0.data[i]);
      const variance = v1 - (cov * cov) / v2;
      assert.ok(Math.abs(post.mean.data[i] - mean) < 1e-5, `mean at t=${t}`);
      assert.ok(Math.abs(post.variance[i] / variance - 1) < 1e-9, `variance at t=${t}`);
      assert.equal(post.logVarianceClipped[i], Math.log(post.variance[i]));
    });
    const p0 = qPosteriorMeanVariance(s, x0, xt, 0);
    assert.equal(p0.variance[0], 0);
    assert.ok(maxAbsDiff(p0.mean, x0) < 1e-6, 'at t = 0 the posterior is the data');
    assert.equal(p0.logVarianceClipped[0], Math.log(s.posteriorVariance[1]));
  });

  test('bad shapes and timesteps give one-line errors naming the function', () => {
    const x = randn([4, 2], new Generator(0));
    assert.throws(() => qSample(s, x, 1000), oneLine(/^qSample: timestep 1000 is out of range \(real t in \[0, 999\]\)$/));
    assert.throws(() => qSample(s, x, -1), oneLine(/^qSample: timestep -1 is out of range/));
    assert.throws(() => qStep(s, x, 2.5), oneLine(/^qStep: timestep 2.5 is out of range \(integer t in \[0, 999\]\)$/));
    assert.throws(() => qSample(s, x, [1, 2, 3]), oneLine(/^qSample: 3 timesteps for a batch of 4$/));
    assert.throws(() => qSample(s, x, 5, randn([4, 3])), oneLine(/^qSample: x_0 \[4, 2\] and noise \[4, 3\] differ in shape$/));
    assert.throws(() => qPosteriorMeanVariance(s, x, randn([2, 2]), 5), oneLine(/^qPosteriorMeanVariance: x_0 \[4, 2\] and x_t \[2, 2\] differ in shape$/));
  });
});

describe('parameterizations and score', () => {
  const s = makeSchedule({ kind: 'cosine', T: 1000 });
  const gen = new Generator(11);
  const x0 = randn([6, 3], gen), eps = randn([6, 3], gen);
  const t = [0, 1, 100, 500, 900, 999];
  const xt = qSample(s, x0, t, eps);

  test('ε, x_0 and v convert exactly into one another', () => {
    const v = velocity(s, x0, eps, t);
    assert.ok(maxAbsDiff(predictStartFromNoise(s, xt, t, eps), x0) < 2e-3, 'x_0 from ε (ᾱ small at t = 999 amplifies rounding)');
    assert.ok(maxAbsDiff(predictNoiseFromStart(s, xt, t, x0), eps) < 2e-3, 'ε from x_0 (σ small at t = 0)');
    assert.ok(maxAbsDiff(predictStartFromV(s, xt, t, v), x0) < 1e-5, 'x_0 from v');
    assert.ok(maxAbsDiff(predictNoiseFromV(s, xt, t, v), eps) < 1e-5, 'ε from v');
    for (const [from, to, a, b] of [['epsilon', 'v', eps, v], ['v', 'x0', v, x0], ['x0', 'epsilon', x0, eps], ['v', 'epsilon', v, eps]] as const) {
      assert.ok(maxAbsDiff(convertPrediction(s, a, xt, t, from, to), b) < 2e-3, `${from} → ${to}`);
    }
  });

  test('score = −ε̂/σ_t, and it is the exact score of q(x_t | x_0)', () => {
    const sc = score(s, xt, eps, t);
    const { mean, variance } = qMeanVariance(s, x0, t);
    for (let i = 0; i < 6; i++) {
      for (let d = 0; d < 3; d++) {
        const k = i * 3 + d;
        assert.ok(Math.abs(sc.data[k] + eps.data[k] / s.sigmas[t[i]]) < 1e-3 * Math.max(1, Math.abs(sc.data[k])));
        const exact = -(xt.data[k] - mean.data[k]) / variance[i];
        assert.ok(Math.abs(sc.data[k] - exact) < 1e-2 * Math.max(1, Math.abs(exact)), `score at t=${t[i]}`);
      }
    }
  });

  test('x_0 from ε at zero terminal SNR is refused; v still works', () => {
    const z = makeSchedule({ kind: 'linear', T: 100, rescaleZeroTerminalSnr: true });
    const x = randn([2, 2], gen);
    assert.throws(() => predictStartFromNoise(z, x, 99, x), oneLine(/^predictStartFromNoise: x_0 is undefined from ε at ᾱ_t = 0/));
    assert.ok(maxAbsDiff(predictStartFromV(z, x, 99, x), tensor(x.toArray().map((u) => -u), [2, 2])) < 1e-7, 'x_0 = −v at ᾱ = 0');
  });

  test('unknown prediction type', () => {
    assert.throws(() => convertPrediction(s, xt, xt, 3, 'score' as never, 'x0'), oneLine(/^convertPrediction: unknown prediction type "score" \(expected epsilon, x0, v\)$/));
  });
});

describe('reverse process p_θ(x_{t−1} | x_t)', () => {
  const s = makeSchedule({ kind: 'linear', T: 1000 });
  const gen = new Generator(5);
  const x0 = randn([4, 2], gen), eps = randn([4, 2], gen);
  const t = [0, 10, 400, 999];
  const xt = qSample(s, x0, t, eps);

  test('with the true ε the mean is the posterior mean; variances are β_t, β̃_t or their learned interpolation', () => {
    const q = qPosteriorMeanVariance(s, x0, xt, t);
    const large = pMeanVariance(s, eps, xt, t, { variance: 'fixedLarge' });
    assert.ok(maxAbsDiff(large.mean, q.mean) < 2e-4);
    assert.ok(maxAbsDiff(large.x0Pred, x0) < 1e-3);
    const lv = (p: { logVariance: Tensor }, i: number) => p.logVariance.data[i];
    t.forEach((u, i) => assert.ok(Math.abs(lv(large, i) - (u === 0 ? Math.log(s.posteriorVariance[1]) : Math.log(s.betas[u]))) < 1e-5));
    const small = pMeanVariance(s, eps, xt, t, { variance: 'fixedSmall' });
    t.forEach((u, i) => assert.ok(Math.abs(lv(small, i) - s.posteriorLogVarianceClipped[u]) < 1e-5));
    // Learned range: v = −1 gives β̃ (clipped), v = +1 gives β, v = 0 their geometric mean.
    for (const vv of [-1, 0, 1]) {
      const out = tensor(Array.from({ length: 16 }, (_, k) => (k % 4 < 2 ? eps.data[(k >> 2) * 2 + (k % 4)] : vv)), [4, 4]);
      const p = pMeanVariance(s, out, xt, t, { variance: 'learnedRange' });
      assert.ok(maxAbsDiff(p.mean, q.mean) < 2e-4);
      t.forEach((u, i) => {
        const want = ((vv + 1) / 2) * Math.log(s.betas[u]) + (1 - (vv + 1) / 2) * s.posteriorLogVarianceClipped[u];
        assert.ok(Math.abs(p.logVariance.data[i * 2] - want) < 1e-5, `v=${vv}, t=${u}`);
      });
    }
  });

  test('x_0 and v predictions give the same p_θ as ε', () => {
    const base = pMeanVariance(s, eps, xt, t);
    for (const type of ['x0', 'v'] as const) {
      const pred = type === 'x0' ? x0 : velocity(s, x0, eps, t);
      assert.ok(maxAbsDiff(pMeanVariance(s, pred, xt, t, { prediction: type }).mean, base.mean) < 1e-3, type);
    }
  });

  test('pSample chained from T−1 to 0 samples the data (exact denoiser; mean ± 0.04, std ± 6 %)', () => {
    const s2 = makeSchedule({ kind: 'linear', T: 200, betaStart: 5e-4, betaEnd: 0.1 });
    const model = gaussianOracle(s2, [0.5, -1], [0.4, 0.8]);
    const g = new Generator(21);
    let x = randn([3000, 2], g);
    for (let t = 199; t >= 0; t--) x = pSample(s2, model, x, t, { gen: g }).sample;
    const m = moments(x);
    [0.5, -1].forEach((mu, d) => assert.ok(Math.abs(m.mean[d] - mu) < 0.04, `mean ${m.mean}`));
    [0.4, 0.8].forEach((sd, d) => assert.ok(Math.abs(m.std[d] / sd - 1) < 0.06, `std ${m.std}`));
  });

  test('model output shape is checked against x_t', () => {
    assert.throws(() => pMeanVariance(s, randn([4, 3]), xt, 5), oneLine(/^pMeanVariance: model output \[4, 3\] does not match x_t \[4, 2\]$/));
    assert.throws(() => pMeanVariance(s, randn([4, 2]), xt, 5, { variance: 'learnedRange' }),
      oneLine(/^pMeanVariance: model output \[4, 2\] does not match x_t \[4, 2\] with learned variance \(expected \[4, 4\]\)$/));
    assert.throws(() => pMeanVariance(s, eps, xt, 5, { variance: 'big' as never }), oneLine(/^pMeanVariance: unknown variance type "big"/));
  });
});

describe('x_0 clipping and dynamic thresholding', () => {
  test('static clip clamps to the range', () => {
    const x = tensor([-3, -0.5, 0.2, 4], [2, 2]);
    assert.deepEqual(applyX0Clip(x, { kind: 'clip' }).toArray(), [-1, -0.5, 0.2, 1].map(Math.fround));
    assert.deepEqual(applyX0Clip(x, { kind: 'clip', min: 0, max: 2 }).toArray(), [0, 0, 0.2, 2].map(Math.fround));
  });

  test('dynamic thresholding (Imagen): per sample s = max(1, quantile of |x̂_0|), clamp to ±s, divide by s', () => {
    // Sample 0 stays within [−1, 1] (s = 1: unchanged); sample 1 is scaled by its 0.9-quantile of |x|.
    const x = tensor([0.5, -0.9, 0.1, 0.3, 2, -4, 1, 0.5], [2, 4]);
    const y = dynamicThreshold(x, 0.9);
    assert.deepEqual(y.toArray().slice(0, 4), [0.5, -0.9, 0.1, 0.3].map(Math.fround));
    // sorted |x| of sample 1: 0.5, 1, 2, 4 → position 0.9·3 = 2.7 → 2 + 0.7·2 = 3.4
    const sMax = 3.4;
    [2, -4, 1, 0.5].forEach((v, i) => assert.ok(Math.abs(y.data[4 + i] - Math.min(Math.max(v, -sMax), sMax) / sMax) < 1e-6));
    assert.ok(Math.max(...y.toArray().map(Math.abs)) <= 1);
    assert.throws(() => dynamicThreshold(x, 1.5), oneLine(/^dynamicThreshold: percentile 1.5 is not in \(0, 1\]$/));
  });
});
