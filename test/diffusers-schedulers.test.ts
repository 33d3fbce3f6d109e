/**
 * diffusers scheduler configs run in diffuse as diffusers runs them.
 *
 * test/fixtures/diffusers/schedulers.json comes from diffusers' own schedulers (tools/gen_diffusers_fixtures.py,
 * the commit in its `diffusersCommit`): for each config, the timesteps and σ's of set_timesteps, and the
 * trajectory of the standard loop (x = noise · init_noise_sigma; scale_model_input; step) on an analytic model —
 * the exact denoiser of a 2-D Gaussian under a closed-form ᾱ(t), computed in float64 on both sides. Stochastic
 * steps replay the normal draws diffusers made, in order, so every step must draw exactly when diffusers does.
 * diffuse rebuilds diffusers' float32 ᾱ table from each config, and its timesteps and σ's must equal diffusers'
 * (≤ 1e-12 relative; they are equal) — see src/diffusion/diffusersFloat32.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Generator, Tensor, tensor } from '../src/tensor/index.js';
import { type Model, runSampler, sample, spacedTimesteps } from '../src/diffusion/index.js';
import { diffusersGrid, diffusersSamplerConfig, diffusersSchedule, diffusersTables, parseDiffusersScheduler, parsePythonJson } from '../src/diffusion/diffusers.js';
import { roundHalfEven } from '../src/diffusion/samplers/common.js';
import { fma32, numpyLogFloat32, torchLinspaceFloat32 } from '../src/diffusion/diffusersFloat32.js';
import { NoiseSchedule } from '../src/diffusion/schedules.js';

interface Case {
  name: string; class: string; config: Record<string, unknown>; steps: number; pipeline: { eta?: number };
  timesteps: number[]; sigmas: number[] | null; initNoiseSigma: number; noise: number[]; shape: number[];
  drawn: number[][]; trajectory: number[][]; alphasCumprodTable: string;
  /** σ schedulers: the final sample of the same loop run by diffusers with a float64 sample and model output. */
  finalFloat64?: number[];
}
interface Doc {
  diffusersCommit: string;
  model: { mu: number[]; std: number[]; learnedChannels: number[] };
  cases: Case[];
  alphasCumprod: Record<string, number[]>;
  spacing: Record<string, { checksums: number[]; lengthNot_n: [number, number][] }>;
}

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'diffusers', 'schedulers.json');
const doc = parsePythonJson(readFileSync(FIX, "utf8"), FIX) as Doc;

/** A Generator whose normal draws are the ones diffusers made, in order, one tensor at a time. */
class ReplayGenerator extends Generator {
  private next = 0;
  constructor(private readonly draws: number[][]) { super(0); }
  override fillNormal(out: Float32Array): Float32Array {
    const d = this.draws[this.next++];
    if (!d || d.length !== out.length) throw new Error(`ReplayGenerator: draw ${this.next} of ${this.draws.length} (size ${out.length}) was not made by diffusers`);
    out.set(d);
    return out;
  }
  get used(): number { return this.next; }
}

/** The fixture's analytic model (see tools/gen_diffusers_fixtures.py, analytic_model). */
function analyticModel(prediction: string, learned: boolean): Model {
  const { mu, std, learnedChannels } = doc.model;
  return (x: Tensor, t: Tensor) => {
    const [b, c] = x.shape, xd = x.data, td = t.data;
    const out = new Float32Array(b * (learned ? 2 * c : c));
    for (let i = 0; i < b; i++) {
      const t1 = td[i] + 1;
      const ab = Math.exp(-(1e-4 * t1 + 0.5 * (0.02 - 1e-4) * t1 * t1 / 1000));
      const a = Math.sqrt(ab), s = Math.sqrt(1 - ab);
      for (let j = 0; j < c; j++) {
        const xs = xd[i * c + j];
        const eps = s * (xs - a * mu[j]) / (ab * std[j] ** 2 + 1 - ab);
        const x0 = (xs - s * eps) / a;
        const o = prediction === 'epsilon' ? eps : prediction === 'sample' ? x0 : a * eps - s * x0;
        out[i * (learned ? 2 * c : c) + j] = o;
        if (learned) out[i * 2 * c + c + j] = learnedChannels[j];
      }
    }
    return tensor(out, learned ? [b, 2 * c, 1, 1] : [b, c, 1, 1]);
  };
}

describe(`diffusers schedulers (diffusers ${doc.diffusersCommit})`, () => {
  test('timestep spacings equal diffusers for every step count 1…1000 (numpy rounds half to even)', () => {
    for (const [key, ref] of Object.entries(doc.spacing)) {
      const [cls, spacing] = key.split('/');
      const sched = parseDiffusersScheduler({ _class_name: cls, timestep_spacing: spacing });
      const lengths = new Map(ref.lengthNot_n);
      ref.checksums.forEach((sum, i) => {
        const n = i + 1;
        const ts = diffusersGrid(sched, n).timesteps;
        const sumOurs = ts.reduce((a, t, k) => a + (k + 1) * t, 0);
        if (lengths.get(n) === n + 1 && spacing === 'trailing') {
          // numpy's arange overshoot: diffusers appends a timestep −1, which diffuse leaves out.
          assert.equal(ts.length, n, `${key} n=${n}: length`);
          assert.equal(sumOurs - (n + 1), sum, `${key} n=${n}: timesteps (and diffusers' extra −1)`);
        } else {
          assert.equal(ts.length, lengths.get(n) ?? n, `${key} n=${n}: length`);
          assert.equal(sumOurs, sum, `${key} n=${n}: timesteps`);
        }
        if (cls === 'DDIMScheduler') assert.deepEqual(spacedTimesteps('t', 1000, n, spacing as 'linspace'), ts, `spacedTimesteps ${spacing} n=${n}`);
      });
    }
  });

  test('roundHalfEven', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 937.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, -0, -2, 938, 2, 3]);
  });

  /** |a − b| ≤ 1e-12 relative (what "exact" means here: diffusers' float32 values read back as float64). */
  const exact = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.abs(b);
  let worstT = 0, worstS = 0, worstX = 0;
  const rel = (a: number, b: number) => (a === b ? 0 : Math.abs(a - b) / Math.abs(b));

  for (const c of doc.cases) {
    test(`${c.name}: ᾱ table, timesteps and σ's exact, trajectory`, (t) => {
      const sched = parseDiffusersScheduler(c.config);
      // diffusers' float32 ᾱ table, rebuilt from the config (stored as 9 significant digits: float32 exactly).
      const refAc = doc.alphasCumprod[c.alphasCumprodTable].map(Math.fround);
      const tables = diffusersTables(sched);
      refAc.forEach((v, i) => {
        // sigmoid: torch.sigmoid's float32 exp (SLEEF) is not reproduced; within an ulp or two of β there.
        if (c.config.beta_schedule === 'sigmoid') assert.ok(Math.abs(tables.alphasCumprod[i] - v) <= 1e-6 * v, `ᾱ_${i}: ${tables.alphasCumprod[i]} vs diffusers ${v}`);
        else assert.equal(tables.alphasCumprod[i], v, `ᾱ_${i}`);
      });
      const grid = diffusersGrid(sched, c.steps);
      // Heun repeats every timestep but the first (one per model evaluation).
      const refTs = c.class === 'HeunDiscreteScheduler' ? c.timesteps.filter((_, i) => i === 0 || i % 2 === 1) : c.timesteps;
      assert.equal(grid.timesteps.length, refTs.length, 'number of timesteps');
      grid.timesteps.forEach((t, i) => {
        worstT = Math.max(worstT, rel(t, refTs[i]));
        assert.ok(exact(t, refTs[i]), `timestep ${i}: ${t} vs diffusers ${refTs[i]}`);
      });
      if (c.sigmas) {
        const refS = c.class === 'HeunDiscreteScheduler' ? c.sigmas.filter((_, i) => i === 0 || i % 2 === 1) : c.sigmas;
        assert.equal(grid.sigmas!.length, refS.length, 'number of σ levels');
        grid.sigmas!.forEach((s, i) => {
          worstS = Math.max(worstS, rel(s, refS[i]));
          assert.ok(exact(s, refS[i]) || s === refS[i], `σ ${i}: ${s} vs diffusers ${refS[i]}`);
        });
        assert.ok(exact(grid.initNoiseSigma, c.initNoiseSigma), `init_noise_sigma ${grid.initNoiseSigma} vs ${c.initNoiseSigma}`);
      }
      const schedule = diffusersSchedule(sched);
      const gen = new ReplayGenerator(c.drawn);
      const config = diffusersSamplerConfig(sched, c.steps, { eta: c.pipeline.eta, schedule });
      const model = analyticModel(c.config.prediction_type as string ?? 'epsilon', sched.learnedVariance);
      const noise = tensor(Float32Array.from(c.noise), c.shape);
      const xs: Float32Array[] = [];
      const out = sample(runSampler(config, model, schedule, noise, {
        prediction: sched.prediction, clip: sched.clip, learnedVariance: sched.learnedVariance, gen,
      }), (e) => { xs.push(e.xt.data as Float32Array); });
      assert.equal(gen.used, c.drawn.length, 'normal draws');
      const ref = c.trajectory[c.trajectory.length - 1];
      let err = 0, spread = 0;
      out.data.forEach((v, i) => { err = Math.max(err, Math.abs(v - ref[i])); });
      // diffusers' own float32 rounding: its final sample against the same loop in float64. Small, except where
      // σ_max is huge (cosine: ᾱ_{T−1} ≈ 2e-9, σ_max ≈ 2e4), where float32 steps lose ~1e-4 on either side.
      c.finalFloat64?.forEach((v, i) => { spread = Math.max(spread, Math.abs(v - ref[i])); });
      const tol = Math.max(1e-5, 3 * spread);
      if (tol > 1e-5) {
        let to64 = 0;
        out.data.forEach((v, i) => { to64 = Math.max(to64, Math.abs(v - c.finalFloat64![i])); });
        t.diagnostic(`final sample within ${err.toExponential(2)} of diffusers (${to64.toExponential(2)} of its float64 run), whose float32 and float64 runs differ by ${spread.toExponential(2)}`);
      }
      assert.ok(err <= tol, `final sample differs from diffusers by ${err.toExponential(2)} (diffusers' float32 rounding: ${spread.toExponential(2)})`);
      // The discrete samplers' steps are the scheduler's steps: compare every one.
      if (c.class === 'DDPMScheduler' || c.class === 'DDIMScheduler') {
        xs.forEach((x, k) => x.forEach((v, i) => {
          const d = Math.abs(v - c.trajectory[k][i]);
          err = Math.max(err, d);
          assert.ok(d <= 1e-5, `step ${k}`);
        }));
      }
      if (tol === 1e-5) worstX = Math.max(worstX, err); // the configs where 1e-5 applies
    });
  }

  test('worst differences from diffusers over every config', (t) => {
    t.diagnostic(`timesteps ${worstT.toExponential(1)} relative, σ's ${worstS.toExponential(1)} relative, samples ${worstX.toExponential(1)} absolute`);
    assert.ok(worstT <= 1e-12 && worstS <= 1e-12 && worstX <= 1e-5);
  });

  test('float32 helpers: fused multiply-add rounds once; numpy\'s float32 log is numpy\'s, not the correctly rounded one', () => {
    // a·b + c lies just below a float32 midpoint, but its double rounding is the midpoint, which ties to even upward.
    const a = 1 + 2 ** -23, b = (1 - 2 ** -23) * 2 ** -31, c = 2 ** -7 + 2 ** -30;
    assert.equal(Math.fround(a * b + c), c + 2 ** -30);
    assert.equal(fma32(a, b, c), c);
    // numpy 1.24.2's np.log on float32 arrays (its worst case, 0x3f486945, first; then σ_min…σ_max-like values).
    const xs = [0.782856285572052, 0.0010000000474974513, 0.5, 20291.302734375, 1];
    assert.deepEqual(xs.map(numpyLogFloat32), [-0.2448062002658844, -6.907755374908447, -0.6931471824645996, 9.917947769165039, 0]);
    assert.notEqual(Math.fround(Math.log(xs[0])), -0.2448062002658844);
    // torch.linspace(1e-4, 0.02, 17, dtype=float32)[14:] on PyTorch 1.13 (the scalar tail after one 16-wide block).
    assert.deepEqual(Array.from(torchLinspaceFloat32(1e-4, 0.02, 17).subarray(14)), [0.017512500286102295, 0.01875624991953373, 0.019999999552965164]);
    assert.throws(() => new NoiseSchedule({ kind: 'custom', betas: [0.1, 0.2] }, [0.9]), /alphasCumprod has 1 values for 2 betas/);
  });

  test('config errors are one line naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ _class_name: 'LMSDiscreteScheduler' }, /_class_name = "LMSDiscreteScheduler" is not supported/],
      [{ _class_name: 'DDIMScheduler', foo: 1 }, /foo = 1 is not a field of DDIMScheduler/],
      [{ _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'dpmsolver' }, /algorithm_type = "dpmsolver" is not supported/],
      [{ _class_name: 'DPMSolverMultistepScheduler', solver_order: 4 }, /solver_order = 4 must be one of 1, 2, 3/],
      [{ _class_name: 'DDPMScheduler', num_train_timesteps: -3 }, /num_train_timesteps = -3 must be/],
      [{ _class_name: 'EulerDiscreteScheduler', rescale_betas_zero_snr: true }, /rescale_betas_zero_snr = true is not supported/],
      [{ _class_name: 'DDPMScheduler', beta_schedule: 'laplace' }, /beta_schedule = "laplace" must be one of/],
    ];
    for (const [cfg, re] of bad) {
      assert.throws(() => parseDiffusersScheduler(cfg, 'x/scheduler_config.json'), (e: Error) => re.test(e.message) && e.message.startsWith('x/scheduler_config.json: ') && !e.message.includes('\n'), JSON.stringify(cfg));
    }
    // Python's json writes -Infinity bare (DPM-Solver's lambda_min_clipped default).
    const s = parseDiffusersScheduler(parsePythonJson('{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "_diffusers_version": "0.31.0"}', 'f'));
    assert.equal(s.className, 'DPMSolverMultistepScheduler');
  });
});
