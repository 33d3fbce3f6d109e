/**
 * Progressive distillation (src/diffusion/distillation.ts, src/train/distill.ts): the target is the one that makes
 * a student's DDIM step land where two of the teacher's land, checked with the real `ddim` sampler on an exact
 * mixture denoiser; a point-mass teacher gives back its point; the `diffuse distill` command end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Generator, Tensor, randn, tensor } from '../src/tensor/index.js';
import {
  type DistillTeacher, type Model, ddim, distillationStep, makeSchedule, progressiveDistillationTarget, sample, spacedTimesteps,
} from '../src/diffusion/index.js';
import { loadMnist } from '../src/data/index.js';
import { unetPreset } from '../src/nn/unet.js';
import { AdamW, ProgressiveDistiller, buildModel, distillRunConfig, distillTeacher, readCheckpointJson, type RunConfig } from '../src/train/index.js';
import { mixtureOracle, type MixtureSpec } from './oracles/gaussians.js';

const schedule = makeSchedule({ kind: 'linear', T: 1000 });
const MIX: MixtureSpec = { weights: [0.5, 0.3, 0.2], means: [[-2, 0], [2, 0], [0, 2.5]], stds: [[0.3, 0.5], [0.4, 0.3], [0.5, 0.25]] };

function maxAbsDiff(a: Tensor, b: Tensor): number {
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

describe('progressive distillation: the target', () => {
  test("a student step's timesteps are every other point of the teacher's trailing grid, and ddim's own", () => {
    for (const n of [1, 2, 4, 8, 16, 64]) {
      const steps = Array.from({ length: n }, (_, k) => distillationStep(1000, n, k));
      assert.deepEqual(steps.map((s) => s[0]), spacedTimesteps('test', 1000, n, 'trailing'));
      const teacher = spacedTimesteps('test', 1000, 2 * n, 'trailing');
      assert.deepEqual(steps.flatMap((s) => [s[0], s[1]]), teacher);
      steps.forEach((s, k) => assert.equal(s[2], k + 1 < n ? steps[k + 1][0] : -1));
    }
    assert.throws(() => distillationStep(1000, 4, 4), /step must be an integer in 0…3/);
    assert.throws(() => distillationStep(1000, 600, 0), /student steps must be an integer in 1…500/);
  });

  test('a teacher that knows the data is one point gives that point back as the target, at every step', () => {
    const c = tensor([0.3, -0.7, 0.1, 0.9], [1, 4]);
    // ε(z, t) = (z − α c)/σ: the exact noise prediction for data at c.
    const pointMass: Model = (z, t) => {
      const out = new Float32Array(z.size);
      for (let i = 0; i < z.shape[0]; i++) {
        const ab = schedule.alphasCumprod[t.data[i]], a = Math.sqrt(ab), s = Math.sqrt(1 - ab);
        for (let d = 0; d < 4; d++) out[4 * i + d] = (z.data[4 * i + d] - a * c.data[d]) / s;
      }
      return tensor(out, z.shape);
    };
    const teacher: DistillTeacher = { model: pointMass, prediction: 'epsilon' };
    const n = 4, g = new Generator(1), eps = randn([n, 4], g);
    const k = [0, 1, 2, 3], t0 = k.map((ki) => distillationStep(1000, n, ki)[0]);
    const zt = new Tensor(Float32Array.from({ length: 4 * n }, (_, j) => {
      const ab = schedule.alphasCumprod[t0[Math.floor(j / 4)]];
      return Math.sqrt(ab) * c.data[j % 4] + Math.sqrt(1 - ab) * eps.data[j];
    }), [n, 4]);
    const target = progressiveDistillationTarget(teacher, schedule, zt, n, k);
    for (let j = 0; j < 4 * n; j++) {
      const ab = schedule.alphasCumprod[t0[Math.floor(j / 4)]];
      assert.ok(Math.abs(target.x0.data[j] - c.data[j % 4]) < 2e-4, `x̃ ${target.x0.data[j]} vs ${c.data[j % 4]}`);
      const v = Math.sqrt(ab) * eps.data[j] - Math.sqrt(1 - ab) * c.data[j % 4];
      assert.ok(Math.abs(target.v.data[j] - v) < 2e-4, `ṽ ${target.v.data[j]} vs ${v}`);
    }
  });

  for (const n of [1, 2, 4]) {
    test(`a student that predicts the target samples in ${n} DDIM step(s) what the exact teacher samples in ${2 * n} (mixture oracle)`, async () => {
      const exact = mixtureOracle(schedule, MIX);
      const teacher: DistillTeacher = { model: exact, prediction: 'epsilon' };
      const grid = spacedTimesteps('test', 1000, n, 'trailing');
      // The ideal student: at its own step k it returns the distillation target computed there.
      const student: Model = (z, t) => {
        const k = Array.from(t.data, (tv) => grid.indexOf(tv));
        assert.ok(k.every((ki) => ki >= 0), `student asked at timesteps ${Array.from(t.data).slice(0, 3)} off its grid`);
        return progressiveDistillationTarget(teacher, schedule, z, n, k).v;
      };
      const noise = randn([500, 2], new Generator(7));
      const fromTeacher = await sample(ddim(exact, schedule, noise, { steps: 2 * n }));
      const fromStudent = await sample(ddim(student, schedule, noise, { steps: n, prediction: 'v' }));
      const d = maxAbsDiff(fromStudent, fromTeacher);
      assert.ok(d < 2e-3, `student vs teacher: max |Δ| ${d}`);
      // The step does something: the samples are far from the noise they started at.
      assert.ok(maxAbsDiff(fromStudent, noise) > 1);
    });
  }
});

describe('progressive distillation: a round', () => {
  test("the student starts as the teacher (weights and EMA), and its steps lower the loss on a fixed batch", async () => {
    const dataset = loadMnist({ split: 'train', limit: 8 });
    const teacherConfig: RunConfig = {
      dataset: 'mnist', datasetLimit: 8,
      model: { kind: 'unet', config: unetPreset('tiny', { modelChannels: 8, channelMult: [1, 2], attentionLevels: [], midAttention: false, numClasses: 10 }) },
      schedule: { kind: 'linear', T: 1000 }, objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
      trainer: {
        steps: 1, batchSize: 8, accumulate: 1, lr: 1e-3, minLr: 1e-4, warmupSteps: 0, weightDecay: 0, gradClip: 1, emaDecay: 0.99,
        condDropout: 0.1, seed: 0, sampleEvery: 0, checkpointEvery: 0, previewSampler: { kind: 'ddim', steps: 2 }, previewCount: 4,
      },
    };
    const teacher = buildModel(teacherConfig, 5);
    const init = teacher.stateDict();
    const config = distillRunConfig(teacherConfig, {
      steps: 2, iterations: 40, batchSize: 8, lr: 2e-3, guidance: 2, emaDecay: 0.9, seed: 0, checkpointEvery: 0, sampleEvery: 0, teacherPath: 't',
    });
    const student = new ProgressiveDistiller(config, dataset, distillTeacher(teacher, teacherConfig, 2), init);
    for (const [k, p] of student.model.namedParameters()) assert.deepEqual(p.data, init.get(k)!.data, k);
    const ema = await student.ema.stateDict();
    for (const [k, e] of ema.tensors) assert.deepEqual(e.data, init.get(k)!.data, `EMA ${k}`);
    // One fixed batch, seen again and again: the distillation loss must fall.
    const x = new Tensor(dataset.images.slice(0, 8 * 784), [8, 1, 28, 28]), y = new Tensor(dataset.labels.slice(0, 8), [8]);
    const lossAt = () => { const g = student.trainGen.getState(); const l = (student as unknown as { objectiveLoss(x: Tensor, c: Tensor): Tensor }).objectiveLoss(x, y).data[0]; student.trainGen.setState(g); return l; };
    const first = lossAt();
    const opt = new AdamW(student.model, { lr: 2e-3, weightDecay: 0 });
    for (let i = 0; i < 30; i++) {
      const g = student.trainGen.getState();
      (student as unknown as { objectiveLoss(x: Tensor, c: Tensor): Tensor }).objectiveLoss(x, y).backward();
      student.trainGen.setState(g);
      opt.step();
      opt.zeroGrad();
    }
    const last = lossAt();
    assert.ok(last < 0.5 * first, `loss ${first} → ${last}`);
  });
});

const tiny = ['--batch-size', '4', '--limit', '40', '--sample-every', '0', '--warmup', '1'];

function diffuse(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['bin/diffuse.mjs', ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const tmp = () => mkdtempSync(join(tmpdir(), 'diffuse-distill-'));

describe('diffuse distill', () => {
  const teacher = join(tmp(), 'teacher');
  test('rounds halve the steps; each student samples with DDIM in its steps; --resume keeps finished rounds', () => {
    assert.equal(diffuse('train', '--out', teacher, '--steps', '3', ...tiny).code, 0);
    const out = join(tmp(), 'fast');
    const r = diffuse('distill', '--checkpoint', teacher, '--out', out, '--teacher-steps', '4', '--iterations', '3', '--batch-size', '4');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readdirSync(out).sort(), ['steps-1', 'steps-2']);
    for (const n of [2, 1]) {
      const json = readCheckpointJson<RunConfig, { step: number }>(join(out, `steps-${n}`));
      assert.equal(json.state.step, 3);
      assert.equal(json.config.objective.prediction, 'v');
      assert.deepEqual({ ...json.config.distilled, teacher: undefined },
        { method: 'progressive', steps: n, teacherSteps: 2 * n, guidance: 2, teacher: undefined });
    }
    assert.equal(readCheckpointJson<RunConfig, unknown>(join(out, 'steps-1')).config.distilled!.teacher, join(out, 'steps-2'));
    const s = diffuse('sample', '--checkpoint', join(out, 'steps-1'), '--count', '4', '--out', join(tmp(), 's'));
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /4 samples \(ddim, 1 steps/);
    // Finished rounds are kept as they are.
    const before = readFileSync(join(out, 'steps-1', 'ema-00000003.safetensors'));
    const again = diffuse('distill', '--checkpoint', teacher, '--out', out, '--teacher-steps', '4', '--iterations', '3', '--batch-size', '4', '--resume');
    assert.equal(again.code, 0, again.err);
    assert.ok(readFileSync(join(out, 'steps-1', 'ema-00000003.safetensors')).equals(before));
    // A student is a teacher for the next round: its own steps are the default.
    const more = join(tmp(), 'more');
    const m = diffuse('distill', '--checkpoint', join(out, 'steps-2'), '--out', more, '--iterations', '2', '--batch-size', '4');
    assert.equal(m.code, 0, m.err);
    assert.deepEqual(readdirSync(more), ['steps-1']);
  });

  test('bad options get one line and exit 2, and nothing is written', () => {
    const out = join(tmp(), 'none');
    const cases: [string[], RegExp][] = [
      [['--teacher-steps', '6'], /--teacher-steps must be a power of two/],
      [['--teacher-steps', '4', '--to', '4'], /--to must be a power of two below --teacher-steps 4/],
      [['--iterations', '0'], /--iterations must be an integer/],
      [['--guidance', '-1'], /--guidance must be a number/],
    ];
    for (const [args, re] of cases) {
      const r = diffuse('distill', '--checkpoint', teacher, '--out', out, ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
    assert.ok(!existsSync(out));
    const used = tmp();
    const r = diffuse('distill', '--checkpoint', teacher, '--out', teacher);
    assert.equal(r.code, 2);
    assert.match(r.err, /is not empty|holds the teacher/);
    void used;
  });
});
