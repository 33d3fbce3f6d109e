/** Noise schedules: reference values, derived quantities, zero terminal SNR, JSON round trips, bad configs. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  betasFor, makeSchedule, normalizeScheduleConfig, rescaleZeroTerminalSnr, scheduleFromJSON, type ScheduleConfig,
} from '../src/diffusion/index.js';

const close = (a: number, b: number, rel: number, what: string) =>
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${what}: ${a} vs ${b} (relative tolerance ${rel})`);

/*
 * Reference ᾱ_t at indices 0, 1, 99, 499, 999 (T = 1000), computed independently with /usr/bin/python3:
 *   linear, scaledLinear, sigmoid: torch 1.13 in float64 — torch.cumprod(1 − β) with
 *     β = torch.linspace(1e-4, 0.02, 1000)                       (linear)
 *     β = torch.linspace(0.00085**0.5, 0.012**0.5, 1000)**2        (scaledLinear)
 *     β = torch.sigmoid(torch.linspace(−6, 6, 1000))·(0.02 − 1e-4) + 1e-4   (sigmoid)
 *   cosine: plain math, f(t) = cos((t/T + 0.008)/1.008 · π/2)², β_i = min(1 − f(i+1)/f(i), 0.999), ᾱ = running product
 *   zero terminal SNR (linear): √ᾱ from torch, shifted and scaled as Lin et al. 2023 Algorithm 1, squared
 */
const IDX = [0, 1, 99, 499, 999];
const REF: Record<string, number[]> = {
  linear: [0.9999, 0.9997800920720721, 0.89701814567496, 0.07858724288177824, 4.035829765375676e-05],
  cosine: [0.999958715775178, 0.9999125759273678, 0.9720927371139696, 0.4938435904406382, 2.4287669070348567e-09],
  scaledLinear: [0.99915, 0.9982960278384514, 0.8954627734950016, 0.27766965045646774, 0.004660098513077241],
  sigmoid: [0.9998507947991829, 0.9997010188194536, 0.9807492988253783, 0.30193105660219516, 3.968181990533208e-05],
  zeroSnrLinear: [0.9999, 0.9997793254331531, 0.8963783098266697, 0.07602875054711475, 0],
};

describe('schedules: reference values', () => {
  for (const kind of ['linear', 'cosine', 'scaledLinear', 'sigmoid'] as const) {
    test(`${kind} ᾱ_t matches the independently computed values`, () => {
      const s = makeSchedule({ kind, T: 1000 });
      IDX.forEach((t, i) => close(s.alphasCumprod[t], REF[kind][i], 1e-9, `${kind} ᾱ_${t}`));
    });
  }

  test('linear defaults are DDPM (1e-4 → 0.02); cosine defaults s = 0.008, β ≤ 0.999', () => {
    const lin = makeSchedule({ kind: 'linear', T: 1000 });
    assert.equal(lin.betas[0], 1e-4);
    close(lin.betas[999], 0.02, 1e-12, 'β_999');
    const cos = makeSchedule({ kind: 'cosine', T: 1000 });
    assert.deepEqual(cos.toJSON(), { kind: 'cosine', T: 1000, s: 0.008, maxBeta: 0.999 });
    assert.ok(Math.max(...cos.betas) <= 0.999);
    assert.equal(cos.betas[999], 0.999, 'the cap binds at the last step');
  });

  test('rescale to zero terminal SNR (Lin et al. 2023)', () => {
    const s = makeSchedule({ kind: 'linear', T: 1000, rescaleZeroTerminalSnr: true });
    IDX.forEach((t, i) => assert.ok(Math.abs(s.alphasCumprod[t] - REF.zeroSnrLinear[i]) <= 1e-9, `ᾱ_${t} = ${s.alphasCumprod[t]}`));
    assert.equal(s.alphasCumprod[999], 0);
    assert.equal(s.snr[999], 0);
    assert.equal(s.logSnr[999], -Infinity);
    close(s.betas[999], 1, 1e-12, 'β_T');
    close(s.sqrtAlphasCumprod[0], makeSchedule({ kind: 'linear', T: 1000 }).sqrtAlphasCumprod[0], 1e-12, '√ᾱ_0 unchanged');
    assert.equal(s.sigmaMax, s.sigmasVE[998], 'σ_max is the largest finite σ');
    // The function is usable on its own.
    const b = rescaleZeroTerminalSnr(betasFor({ kind: 'cosine', T: 50 }));
    assert.ok(Math.abs(b[49] - 1) < 1e-12);
  });
});

describe('schedules: derived quantities', () => {
  const s = makeSchedule({ kind: 'cosine', T: 200 });

  test('α, ᾱ, σ, SNR, log-SNR, σ_VE and the posterior are consistent', () => {
    for (let t = 0; t < s.T; t++) {
      close(s.alphas[t], 1 - s.betas[t], 1e-15, 'α');
      close(s.alphasCumprod[t], (t ? s.alphasCumprod[t - 1] : 1) * s.alphas[t], 1e-14, 'ᾱ');
      close(s.sigmas[t] ** 2 + s.alphasCumprod[t], 1, 1e-14, 'σ² + ᾱ');
      close(s.snr[t], s.alphasCumprod[t] / s.sigmas[t] ** 2, 1e-12, 'SNR');
      close(Math.exp(s.logSnr[t]), s.snr[t], 1e-9, 'log-SNR');
      close(s.sigmasVE[t], 1 / Math.sqrt(s.snr[t]), 1e-9, 'σ_VE');
      close(s.posteriorVariance[t] + 1e-300, (s.betas[t] * (1 - s.alphasCumprodPrev[t])) / (1 - s.alphasCumprod[t]) + 1e-300, 1e-12, 'β̃');
    }
    assert.equal(s.posteriorVariance[0], 0);
    assert.equal(s.posteriorLogVarianceClipped[0], Math.log(s.posteriorVariance[1]));
    const rows = s.table();
    assert.equal(rows.length, 200);
    assert.deepEqual(Object.keys(rows[5]), ['t', 'beta', 'alpha', 'alphaBar', 'sigma', 'snr', 'logSnr']);
  });

  test('log-SNR decreases strictly; alphaBarAt interpolates log σ and sigmaToT inverts it', () => {
    for (let t = 1; t < s.T; t++) assert.ok(s.logSnr[t] < s.logSnr[t - 1]);
    assert.equal(s.alphaBarAt(17), s.alphasCumprod[17]);
    const mid = s.alphaBarAt(17.5);
    close(Math.log(Math.sqrt((1 - mid) / mid)), (Math.log(s.sigmasVE[17]) + Math.log(s.sigmasVE[18])) / 2, 1e-12, 'log σ midpoint');
    for (const t of [0, 3.25, 17.5, 120.9, 199]) close(s.sigmaToT(s.tToSigma(t)) + 1, t + 1, 1e-9, `sigmaToT(tToSigma(${t}))`);
    assert.equal(s.sigmaToT(1e-9), 0, 'clamped below');
    assert.equal(s.sigmaToT(1e9), 199, 'clamped above');
  });
});

describe('schedules: configs', () => {
  test('every kind round-trips through JSON', () => {
    const configs: ScheduleConfig[] = [
      { kind: 'linear', T: 10 }, { kind: 'scaledLinear', T: 10, betaStart: 0.001 }, { kind: 'cosine', T: 10, s: 0.01 },
      { kind: 'sigmoid', T: 10, rescaleZeroTerminalSnr: true }, { kind: 'custom', betas: [0.1, 0.2, 0.3] },
    ];
    for (const c of configs) {
      const s = makeSchedule(c);
      const again = scheduleFromJSON(JSON.parse(JSON.stringify(s)));
      assert.deepEqual(again.toJSON(), s.toJSON());
      assert.deepEqual(Array.from(again.alphasCumprod), Array.from(s.alphasCumprod));
    }
  });

  test('user-given β', () => {
    const s = makeSchedule({ kind: 'custom', betas: [0.1, 0.5] });
    assert.equal(s.T, 2);
    close(s.alphasCumprod[1], 0.45, 1e-15, 'ᾱ_1');
  });

  test('bad configs fail with one line naming the function and the value', () => {
    const bad: [unknown, RegExp][] = [
      [{ kind: 'quadratic', T: 10 }, /^makeSchedule: unknown schedule kind "quadratic" \(expected one of linear, scaledLinear, cosine, sigmoid, custom\)$/],
      [{ kind: 'linear', T: 0 }, /^makeSchedule: T must be an integer in 1…100000, got 0$/],
      [{ kind: 'cosine', T: -5 }, /^makeSchedule: T must be an integer in 1…100000, got -5$/],
      [{ kind: 'linear', T: 2.5 }, /T must be an integer in 1…100000, got 2.5/],
      [{ kind: 'linear', T: 1e9 }, /^makeSchedule: T must be an integer in 1…100000, got 1000000000$/],
      [{ kind: 'linear', T: 10, betaEnd: 1.5 }, /^makeSchedule: betaEnd must be a number in \(0, 1\], got 1.5$/],
      [{ kind: 'custom', betas: [0.1, 0] }, /^makeSchedule: betas\[1\] must be a number in \(0, 1\], got 0$/],
      [{ kind: 'custom', betas: [] }, /custom betas must be an array of 1…100000 values, got 0 values/],
      [{ kind: 'linear', T: 10, s: 0.1 }, /^makeSchedule: unknown field\(s\) s for kind 'linear'$/],
      [null, /^makeSchedule: config must be an object, got null$/],
    ];
    for (const [cfg, re] of bad) {
      assert.throws(() => scheduleFromJSON(cfg), (e: Error) => re.test(e.message) && !e.message.includes('\n'), JSON.stringify(cfg));
    }
    assert.throws(() => normalizeScheduleConfig({ kind: 'linear', T: 10, rescaleZeroTerminalSnr: 'yes' }), /rescaleZeroTerminalSnr must be a boolean/);
    assert.throws(() => makeSchedule({ kind: 'linear', T: 10 }).alphaBarAt(10), /alphaBarAt: timestep 10 is out of range \[0, 9\]/);
  });
});
