/**
 * Every sampler driven by the exact (closed-form) denoiser of known data reproduces that data.
 *
 * Data: a diagonal Gaussian N((1, −0.5), diag(0.5², 0.25²)) and a 2-D mixture of three Gaussians. Each run draws
 * B = 3000 samples. With that B the standard error of a mean is ≤ 0.5/√3000 ≈ 0.009, of a std ≈ 1.3 % and of a
 * mixture weight ≤ 0.009; the tolerances below are those sampling errors plus each sampler's discretization error
 * at the stated number of steps (see docs/samplers.md for the measured errors).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Generator, Tensor, randn } from '../src/tensor/index.js';
import {
  type Model, type SamplerConfig, type SamplerEvent, type SamplerRun, ddim, ddimInvert, ddpm, dpmSolverPlusPlus, euler, heun,
  karrasSigmas, makeSchedule, predictorCorrector, runSampler, sample, sampleDpmPp2M, sampleHeun, denoiserFromModel, sigmaGrid,
  spacedTimesteps, SAMPLERS, SAMPLER_KINDS, normalizeSamplerConfig, samplerSteps,
} from '../src/diffusion/index.js';
import {
  type MixtureSpec, componentWeights, gaussianFlowMap, gaussianOracle, mixtureOracle, moments, rms, sampleMixture,
} from './oracles/gaussians.js';

const B = 3000;
const schedule = makeSchedule({ kind: 'linear', T: 1000 });
const MEAN = [1, -0.5], STD = [0.5, 0.25];
const MIX: MixtureSpec = { weights: [0.5, 0.3, 0.2], means: [[-2, 0], [2, 0], [0, 2.5]], stds: [[0.3, 0.5], [0.4, 0.3], [0.5, 0.25]] };
const gauss = gaussianOracle(schedule, MEAN, STD);
const mix = mixtureOracle(schedule, MIX);
const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');

const noiseFor = (seed: number) => randn([B, 2], new Generator(seed));

type Make = (model: Model, noise: Tensor, gen: Generator) => SamplerRun;

function run(make: Make, model: Model, seed: number): Tensor {
  const gen = new Generator(seed + 1000);
  return sample(make(model, noiseFor(seed), gen));
}

function checkGaussian(x: Tensor, meanTol: number, stdRelTol: number, what: string): void {
  const m = moments(x);
  for (let d = 0; d < 2; d++) {
    assert.ok(Math.abs(m.mean[d] - MEAN[d]) < meanTol, `${what}: mean[${d}] = ${m.mean[d].toFixed(4)}, want ${MEAN[d]} ± ${meanTol}`);
    assert.ok(Math.abs(m.std[d] / STD[d] - 1) < stdRelTol, `${what}: std[${d}] = ${m.std[d].toFixed(4)}, want ${STD[d]} ± ${stdRelTol * 100}%`);
  }
}

function checkMixture(x: Tensor, wTol: number, what: string): void {
  const w = componentWeights(MIX, x);
  w.forEach((v, k) => assert.ok(Math.abs(v - MIX.weights[k]) < wTol, `${what}: weight[${k}] = ${v.toFixed(4)}, want ${MIX.weights[k]} ± ${wTol}`));
}

// name, sampler, mean tolerance, std relative tolerance, weight tolerance
const CASES: [string, Make, number, number, number][] = [
  ['DDPM 1000 steps, σ² = β', (m, n, g) => ddpm(m, schedule, n, { gen: g }), 0.04, 0.05, 0.03],
  ['DDPM 1000 steps, σ² = β̃', (m, n, g) => ddpm(m, schedule, n, { gen: g, variance: 'fixedSmall' }), 0.04, 0.05, 0.03],
  ['DDPM respaced to 100 steps, σ² = β', (m, n, g) => ddpm(m, schedule, n, { gen: g, steps: 100 }), 0.04, 0.06, 0.03],
  ['DDIM η = 0, 50 trailing steps', (m, n, g) => ddim(m, schedule, n, { gen: g, steps: 50 }), 0.04, 0.15, 0.03],
  ['DDIM η = 0, 200 linspace steps', (m, n, g) => ddim(m, schedule, n, { gen: g, steps: 200, spacing: 'linspace' }), 0.04, 0.05, 0.03],
  ['DDIM η = 1, 200 steps', (m, n, g) => ddim(m, schedule, n, { gen: g, steps: 200, eta: 1 }), 0.04, 0.08, 0.03],
  ['DPM-Solver++(2M), 10 steps', (m, n, g) => dpmSolverPlusPlus(m, schedule, n, { gen: g, steps: 10 }), 0.04, 0.06, 0.03],
  ['DPM-Solver++(2M), 20 Karras steps', (m, n, g) => dpmSolverPlusPlus(m, schedule, n, { gen: g, steps: 20, spacing: 'karras' }), 0.04, 0.08, 0.03],
  ['SDE-DPM-Solver++(2M), 50 steps', (m, n, g) => dpmSolverPlusPlus(m, schedule, n, { gen: g, steps: 50, sde: true }), 0.04, 0.06, 0.03],
  ['Euler, 100 Karras steps', (m, n, g) => euler(m, schedule, n, { gen: g, steps: 100 }), 0.04, 0.06, 0.03],
  ['Heun, 18 Karras steps (35 evaluations)', (m, n, g) => heun(m, schedule, n, { gen: g, steps: 18 }), 0.04, 0.1, 0.03],
  ['Heun with churn (EDM Algorithm 2), 40 steps', (m, n, g) => heun(m, schedule, n, { gen: g, steps: 40, sChurn: 10, sTmin: 0.05, sTmax: 50 }), 0.04, 0.08, 0.03],
  ['predictor–corrector, 500 steps + 1 Langevin step each', (m, n, g) => predictorCorrector(m, schedule, n, { gen: g, steps: 500 }), 0.04, 0.06, 0.03],
];

describe('samplers reproduce the data (exact denoiser)', () => {
  CASES.forEach(([name, make, meanTol, stdTol, wTol], i) => {
    test(name, () => {
      checkGaussian(run(make, gauss, 10 + i), meanTol, stdTol, name);
      checkMixture(run(make, mix, 40 + i), wTol, name);
    });
  });

  test('DDPM with the learned-range variance (v from the exact reverse variance)', () => {
    const learned = gaussianOracle(schedule, MEAN, STD, { learnedVariance: true });
    checkGaussian(run((m, n, g) => ddpm(m, schedule, n, { gen: g, variance: 'learnedRange' }), learned, 7), 0.04, 0.05, 'learned variance');
  });
});

describe('fast samplers match 1000-step DDPM', () => {
  // Tolerances: means within 0.04 and mixture weights within 0.03 of the DDPM result; stds within the stated
  // relative tolerance (Heun on Karras σ's at 18 steps is ≈ 7 % wide on this data: see docs/samplers.md).
  const refG = moments(run((m, n, g) => ddpm(m, schedule, n, { gen: g }), gauss, 1));
  const refW = componentWeights(MIX, run((m, n, g) => ddpm(m, schedule, n, { gen: g }), mix, 2));
  const fast: [string, Make, number, number][] = [
    ['DPM-Solver++(2M), 10 steps', (m, n) => dpmSolverPlusPlus(m, schedule, n, { steps: 10 }), 10, 0.06],
    ['DPM-Solver++(2M), 20 steps', (m, n) => dpmSolverPlusPlus(m, schedule, n, { steps: 20 }), 20, 0.04],
    ['Heun, 18 Karras steps', (m, n) => heun(m, schedule, n, { steps: 18 }), 35, 0.1],
  ];
  for (const [name, make, nfe, stdTol] of fast) {
    test(`${name} (${nfe} model evaluations), std within ${stdTol * 100} %`, () => {
      let count = 0;
      const x = sample(make(gauss, noiseFor(3), new Generator(0)), (e) => { count = e.nfe; });
      assert.equal(count, nfe);
      const m = moments(x);
      for (let d = 0; d < 2; d++) {
        assert.ok(Math.abs(m.mean[d] - refG.mean[d]) < 0.04, `${name}: mean[${d}] ${m.mean[d]} vs DDPM ${refG.mean[d]}`);
        assert.ok(Math.abs(m.std[d] / refG.std[d] - 1) < stdTol, `${name}: std[${d}] ${m.std[d]} vs DDPM ${refG.std[d]}`);
      }
      const w = componentWeights(MIX, sample(make(mix, noiseFor(4), new Generator(0))));
      w.forEach((v, k) => assert.ok(Math.abs(v - refW[k]) < 0.03, `${name}: weight[${k}] ${v} vs DDPM ${refW[k]}`));
    });
  }
});

describe('ODE samplers converge to the exact probability-flow map', () => {
  // For Gaussian data the flow from x_T = noise at ᾱ_{T−1} ends at μ + s (noise − √ᾱ μ)/√(ᾱ s² + 1 − ᾱ).
  const noise = noiseFor(5);
  const exact = gaussianFlowMap(noise, schedule.alphasCumprod[999], MEAN, STD);
  const err = (r: SamplerRun) => rms(sample(r), exact);

  test('second-order solvers: error falls ≈ 4× per doubling of steps; first-order ≈ 2×', () => {
    const dpm = [10, 20, 40].map((n) => err(dpmSolverPlusPlus(gauss, schedule, noise, { steps: n })));
    const hn = [10, 20, 40].map((n) => err(heun(gauss, schedule, noise, { steps: n })));
    const dd = [25, 50, 100].map((n) => err(ddim(gauss, schedule, noise, { steps: n })));
    assert.ok(dpm[0] < 0.02 && dpm[1] < 0.01, `DPM-Solver++ errors ${dpm}`);
    for (const e of [dpm, hn]) assert.ok(e[1] / e[2] > 3, `second order: ${e}`);
    assert.ok(dd[1] / dd[2] > 1.6 && dd[1] / dd[2] < 3, `first order: ${dd}`);
  });

  test('k-diffusion style pure functions of a denoiser give the same result as the schedule-level samplers', () => {
    const D = denoiserFromModel(gauss, schedule);
    const sigmas = sigmaGrid(schedule, 12, { spacing: 'karras' });
    const x = noiseFor(6);
    const start = x.mul(Math.sqrt(1 + sigmas[0] ** 2));
    const a = sample(heun(gauss, schedule, x, { steps: 12 }));
    const it = sampleHeun(D, start, sigmas);
    let r = it.next();
    while (!r.done) r = it.next();
    assert.ok(rms(r.value, a) < 1e-6);
    const b = sample(dpmSolverPlusPlus(gauss, schedule, x, { sigmas }));
    const it2 = sampleDpmPp2M(D, start, sigmas);
    let r2 = it2.next();
    while (!r2.done) r2 = it2.next();
    assert.ok(rms(r2.value, b) < 1e-6);
  });
});

describe('prediction types, zero terminal SNR, inversion', () => {
  test('ε-, x_0- and v-predicting models give the same DDIM and DPM-Solver++ samples', () => {
    const noise = noiseFor(8);
    for (const make of [(m: Model, p: 'epsilon' | 'x0' | 'v') => ddim(m, schedule, noise, { steps: 20, prediction: p }),
      (m: Model, p: 'epsilon' | 'x0' | 'v') => dpmSolverPlusPlus(m, schedule, noise, { steps: 10, prediction: p })]) {
      const ref = sample(make(mix, 'epsilon'));
      for (const p of ['x0', 'v'] as const) {
        const x = sample(make(mixtureOracle(schedule, MIX, { prediction: p }), p));
        assert.ok(rms(x, ref) < 2e-3, `${p}: rms ${rms(x, ref)}`);
      }
    }
  });

  test('zero-terminal-SNR schedule: v-prediction samples correctly from pure noise; ε-prediction is refused', () => {
    const z = makeSchedule({ kind: 'linear', T: 1000, rescaleZeroTerminalSnr: true });
    const vModel = gaussianOracle(z, MEAN, STD, { prediction: 'v' });
    checkGaussian(sample(ddim(vModel, z, noiseFor(9), { prediction: 'v', steps: 100 })), 0.04, 0.1, 'zero SNR, DDIM 100 steps');
    checkGaussian(sample(ddpm(vModel, z, noiseFor(10), { prediction: 'v', steps: 250 })), 0.04, 0.06, 'zero SNR, DDPM');
    assert.throws(() => sample(ddim(gaussianOracle(z, MEAN, STD), z, noiseFor(9))), oneLine(/^ddim: x_0 is undefined from ε at ᾱ_t = 0/));
  });

  test('DDIM inversion maps data to the flow-map latents and back', () => {
    const x0 = sampleMixture({ weights: [1], means: [MEAN], stds: [STD] }, B, new Generator(12));
    const latent = sample(ddimInvert(gauss, schedule, x0, { steps: 100 }));
    // Exact inverse flow: x_T = √ᾱ μ + √(ᾱ s² + 1 − ᾱ) (x_0 − μ)/s at ᾱ = ᾱ_999.
    const ab = schedule.alphasCumprod[999];
    const want = x0.toArray().map((v, i) => Math.sqrt(ab) * MEAN[i % 2] + (Math.sqrt(ab * STD[i % 2] ** 2 + 1 - ab) * (v - MEAN[i % 2])) / STD[i % 2]);
    const lat = latent.toArray();
    const e = Math.sqrt(lat.reduce((a, v, i) => a + (v - want[i]) ** 2, 0) / lat.length);
    assert.ok(e < 0.05, `latent rms error ${e}`);
    const back = sample(ddim(gauss, schedule, latent, { steps: 100 }));
    assert.ok(rms(back, x0) < 0.03, `reconstruction rms ${rms(back, x0)}`);
  });
});

describe('sampler interface', () => {
  test('events: numbering, noise levels, NFE, x_t and x̂_0; early stop', () => {
    const events: SamplerEvent[] = [];
    const out = sample(ddim(gauss, schedule, randn([4, 2], new Generator(1)), { steps: 10 }), (e) => { events.push(e); });
    assert.deepEqual(events.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.ok(events.every((e) => e.totalSteps === 10 && e.xt.shape.join() === '4,2' && e.x0Pred.shape.join() === '4,2'));
    assert.deepEqual(events.map((e) => e.t), spacedTimesteps('t', 1000, 10, 'trailing'));
    assert.ok(events.every((e, i) => i === 0 || e.sigma < events[i - 1].sigma));
    assert.equal(events[9].xt, out);
    const ev2: SamplerEvent[] = [];
    const h = sample(heun(gauss, schedule, randn([4, 2], new Generator(1)), { steps: 5 }), (e) => { ev2.push(e); });
    assert.deepEqual(ev2.map((e) => e.nfe), [2, 4, 6, 8, 9]);
    assert.ok(ev2.every((e, i) => i === 0 || e.t < ev2[i - 1].t), 'σ-samplers report real-valued model timesteps');
    assert.ok(Math.abs(ev2[0].t - 999) < 1e-6 && h.shape.join() === '4,2');
    let n = 0;
    const early = sample(ddpm(gauss, schedule, randn([4, 2], new Generator(1))), (e) => ++n < 3);
    assert.equal(n, 3);
    assert.equal(early.shape.join(), '4,2');
    // Iterating by hand and breaking out works as well.
    let k = 0;
    for (const e of dpmSolverPlusPlus(gauss, schedule, randn([4, 2]), { steps: 8 })) { if (++k === 2) { assert.equal(e.step, 2); break; } }
  });

  test('runSampler takes a JSON config for every sampler', () => {
    const configs: SamplerConfig[] = [
      { kind: 'ddpm', steps: 20 }, { kind: 'ddim', steps: 10, eta: 0.5, spacing: 'leading' },
      { kind: 'dpmSolverPlusPlus', steps: 10, sde: true }, { kind: 'euler', steps: 10 }, { kind: 'heun', steps: 5 },
      { kind: 'predictorCorrector', steps: 20, snr: 0.1 },
    ];
    for (const c of configs) {
      const x = sample(runSampler(JSON.parse(JSON.stringify(c)), gauss, schedule, randn([16, 2], new Generator(2)), { gen: new Generator(3) }));
      assert.equal(x.shape.join(), '16,2', c.kind);
      assert.ok(x.toArray().every(Number.isFinite), c.kind);
    }
    assert.throws(() => runSampler({ kind: 'plms' } as never, gauss, schedule, randn([2, 2])),
      oneLine(/^runSampler: unknown sampler kind "plms" \(expected ddpm, ddim, dpmSolverPlusPlus, euler, heun, predictorCorrector\)$/));
  });

  test('the sampler registry: labels, default steps the samplers run, misspelt settings rejected', () => {
    for (const kind of SAMPLER_KINDS) {
      const entry = SAMPLERS[kind];
      assert.ok(entry.label.length > 0, kind);
      // The default a sampler runs without `steps` is the registry's: count its events.
      let events = 0;
      for (const _ of SAMPLERS[kind].run({ kind } as SamplerConfig, gauss, schedule, randn([2, 2], new Generator(1)), { gen: new Generator(2) })) events++;
      assert.equal(events, entry.defaultSteps(schedule.T), `${kind}: steps run without a count`);
      assert.equal(samplerSteps({ kind } as SamplerConfig, schedule), entry.defaultSteps(schedule.T));
    }
    assert.throws(() => runSampler({ kind: 'ddim', stpes: 10 } as never, gauss, schedule, randn([2, 2])),
      oneLine(/^runSampler: unknown setting stpes for sampler ddim \(it takes steps, eta, spacing, stepsOffset, timesteps, /));
    assert.throws(() => normalizeSamplerConfig({ kind: 'heun', steps: 5, sChurn: 1, eta: 1 }, 'previewSampler'),
      oneLine(/^previewSampler: unknown setting eta for sampler heun/));
    assert.deepEqual(normalizeSamplerConfig({ kind: 'euler', steps: 5, sChurn: 0.5 }), { kind: 'euler', steps: 5, sChurn: 0.5 });
  });

  test('timestep spacings and σ grids', () => {
    assert.deepEqual(spacedTimesteps('f', 1000, 10, 'leading'), [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    assert.deepEqual(spacedTimesteps('f', 1000, 10, 'trailing'), [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    assert.deepEqual(spacedTimesteps('f', 1000, 10, 'linspace'), [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    const k = karrasSigmas(5, 0.002, 80);
    assert.equal(k.length, 6);
    assert.ok(Math.abs(k[0] - 80) < 1e-9 && Math.abs(k[4] - 0.002) < 1e-12 && k[5] === 0);
    const g = sigmaGrid(schedule, 8, { spacing: 'timeUniform' });
    assert.ok(Math.abs(g[0] - schedule.sigmasVE[999]) < 1e-9 && Math.abs(g[7] - schedule.sigmasVE[0]) < 1e-12);
  });

  test('bad input: shapes, step counts, sigmas', () => {
    const bad: Model = (x) => randn([x.shape[0], 3]);
    assert.throws(() => sample(ddim(bad, schedule, randn([4, 2]))), oneLine(/^ddim: model output \[4, 3\] does not match x_t \[4, 2\]$/));
    assert.throws(() => sample(heun(bad, schedule, randn([4, 2]))), oneLine(/^heun: model output \[4, 3\] does not match x_t \[4, 2\]$/));
    assert.throws(() => sample(ddpm(gauss, schedule, randn([4, 2]), { variance: 'learnedRange' })),
      oneLine(/^ddpm: model output \[4, 2\] does not match x_t \[4, 2\] with learned variance \(expected \[4, 4\]\)$/));
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { steps: 0 })), oneLine(/^ddim: steps must be an integer in \[1, 1000\], got 0$/));
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { steps: 2000 })), oneLine(/^ddim: steps must be an integer in \[1, 1000\], got 2000$/));
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { spacing: 'even' as never })), oneLine(/^ddim: unknown timestep spacing "even"/));
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { eta: -1 })), oneLine(/^ddim: eta must be a finite number ≥ 0, got -1$/));
    assert.throws(() => sample(euler(gauss, schedule, randn([4, 2]), { sigmas: [10, 20, 0] })), oneLine(/^euler: sigmas must be finite, strictly decreasing/));
    assert.throws(() => sample(dpmSolverPlusPlus(gauss, schedule, randn([4, 2]), { sigmas: [10, 0, 0] })), oneLine(/strictly decreasing and positive \(the last may be 0\)/));
    // A grid may end above 0 (diffusers' final_sigmas_type = sigma_min): the result is then x at that level, VP scale.
    assert.equal(sample(dpmSolverPlusPlus(gauss, schedule, randn([4, 2]), { sigmas: [10, 1] })).shape.join(), '4,2');
    assert.throws(() => sample(ddim(gauss, schedule, randn([4, 2]), { cond: randn([3, 1]) })), oneLine(/^ddim: cond \[3, 1\] does not have the batch size 4 of the sample \[4, 2\]$/));
  });
});
