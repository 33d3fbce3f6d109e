// The explorer's data files: F16 in safetensors (exact decoding, round-to-nearest-even encoding), the two tools
// that write the files (tools/export_web_model.ts on a tiny training run and on a distilled student of it,
// tools/train_toy_model.ts for a few steps) read back by the browser's loaders (web/src/assets.ts), the
// explorer's sampling of a student (web/src/sampling.ts) against the library's, and the files shipped in
// web/public/data.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  Generator, floatToHalf, fromUint8, halfToFloat, noGrad, parseSafetensors, qSample, randn, serializeSafetensors, tensor,
} from '../src/index.js';
import { judgeSamples, loadModelFromCheckpoint, sampleImages } from '../src/node.js';
import { MNIST_MODELS, checkMnistModel, loadDigits, loadWebMLP, loadWebUNet, type WebModelJson } from '../web/src/assets.js';
import { samplingPlan, startSampling } from '../web/src/sampling.js';

const DATA = join(import.meta.dirname, '..', 'web', 'public', 'data');
const tmp = () => mkdtempSync(join(tmpdir(), 'diffuse-web-'));
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as unknown;

function tsx(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('F16 in safetensors', () => {
  test('every finite half survives float → half → float, and midpoints round to even', () => {
    for (let h = 0; h < 0x10000; h++) {
      const f = halfToFloat(h);
      if (Number.isNaN(f)) continue;
      assert.equal(floatToHalf(f), h, `pattern ${h.toString(16)}`);
      if ((h & 0x7fff) < 0x7bff) { // not the largest finite magnitude
        const g = halfToFloat(h + 1), mid = (f + g) / 2;
        assert.equal(floatToHalf(mid), h % 2 === 0 ? h : h + 1, `midpoint after ${h.toString(16)}`);
      }
    }
    assert.equal(floatToHalf(65519.99), 0x7bff);
    assert.equal(floatToHalf(65520), 0x7c00); // rounds past the largest half: +Infinity
    assert.equal(floatToHalf(-1e9), 0xfc00);
    assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
    assert.equal(floatToHalf(-0), 0x8000);
    assert.equal(halfToFloat(0x0001), 2 ** -24);
  });

  test('writes and reads F16 tensors (little-endian, 2 bytes each)', () => {
    const values = Float32Array.from([0, 1, -2.5, 0.1, 1e-6, 70000, 3.14159]);
    const bytes = serializeSafetensors({ w: { dtype: 'F16', shape: [7], data: values }, b: { shape: [1], data: Float32Array.from([2]) } });
    const { tensors } = parseSafetensors(bytes);
    const w = tensors.get('w')!;
    assert.equal(w.dtype, 'F16');
    assert.ok(w.data instanceof Float32Array);
    assert.deepEqual([...w.data], [...values].map((v) => halfToFloat(floatToHalf(v))));
    assert.equal(w.data[1], 1);
    assert.equal(w.data[5], Infinity);
    assert.ok(Math.abs(w.data[3] - 0.1) < 1e-4);
    assert.equal(tensors.get('b')!.data[0], 2);
  });
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/diffuse.mjs', ...args], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `diffuse ${args.join(' ')}: ${r.stderr}`);
}

/** A tiny training run (2 steps), made once for the tests that export it or distil it. */
let trained: string | undefined;
function trainedRun(): string {
  if (!trained) {
    const run = join(tmp(), 'run');
    cli('train', '--out', run, '--steps', '2', '--batch-size', '4', '--limit', '40', '--sample-every', '0', '--warmup', '1');
    trained = run;
  }
  return trained;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('the explorer tools', () => {
  test('export_web_model: F16 weights and digits that load into the same model', () => {
    const run = trainedRun(), out = tmp();
    tsx('tools/export_web_model.ts', '--run', run, '--out', out, '--digits', '30');
    const desc = readJson(join(out, 'mnist-unet.json')) as { weights: { file: string; bytes: number }; maxRoundingError: number };
    const weights = readFileSync(join(out, desc.weights.file));
    assert.equal(weights.length, desc.weights.bytes);
    const web = loadWebUNet(desc, weights);
    const ref = loadModelFromCheckpoint(run).model;
    ref.eval();
    // Every weight within the recorded rounding error, and the two networks agree.
    const a = web.model.stateDict(), b = ref.stateDict();
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [k, v] of b) {
      const w = a.get(k)!.data;
      for (let i = 0; i < v.data.length; i++) assert.ok(Math.abs(w[i] - v.data[i]) <= desc.maxRoundingError, k);
    }
    const x = randn([2, 1, 28, 28], new Generator(0)), t = tensor(Float32Array.from([10, 900]), [2]);
    const c = tensor(Int32Array.from([3, 10]), [2], { dtype: 'int32' });
    const ya = noGrad(() => web.model.forward(x, t, c)).data, yb = noGrad(() => ref.forward(x, t, c)).data;
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < ya.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(ya[i] - yb[i])); maxAbs = Math.max(maxAbs, Math.abs(yb[i])); }
    assert.ok(maxDiff < 1e-2 * Math.max(1, maxAbs), `F16 model output differs by ${maxDiff}`);
    const digits = loadDigits(readFileSync(join(out, 'mnist-test-digits.safetensors')));
    assert.equal(digits.n, 30);
    assert.deepEqual([...digits.labels.slice(0, 10)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // class-balanced prefix
    // A full model is not distilled: the panel's settings run as they are.
    assert.equal((desc as { distilled?: unknown }).distilled, undefined);
    assert.deepEqual(samplingPlan(web.json, { kind: 'heun', steps: 7, guidance: 2.5 }), { kind: 'heun', steps: 7, guidance: 2.5 });
  });

  test('export_web_model: a distilled student records its steps and folded guidance, and samples as the library does', async (t) => {
    const fast = join(tmp(), 'fast'), out = tmp();
    // One round of progressive distillation (4 → 2 DDIM steps) with guidance 3 folded in; EMA 0: the trained weights.
    cli('distill', '--checkpoint', trainedRun(), '--out', fast, '--teacher-steps', '4', '--to', '2', '--iterations', '2', '--batch-size', '2',
      '--guidance', '3', '--ema', '0');
    const student = join(fast, 'steps-2');
    tsx('tools/export_web_model.ts', '--run', student, '--out', out, '--name', 'fast2', '--digits', '0');
    assert.ok(!existsSync(join(out, 'mnist-test-digits.safetensors')), '--digits 0 wrote digits');
    const desc = readJson(join(out, 'fast2.json')) as WebModelJson;
    assert.deepEqual(desc.distilled, { steps: 2, guidance: 3 });
    assert.equal(desc.prediction, 'v');
    const web = loadWebUNet(desc, readFileSync(join(out, desc.weights.file)), 'fast2.json');
    checkMnistModel({ name: 'fast2', steps: 2 }, web, web);
    assert.throws(() => checkMnistModel({ name: 'fast2', steps: 4 }, web, web), /fast2\.json: expected a student distilled to 4 steps, found 2 steps/);

    // Whatever the panel's sampler, steps and guidance: DDIM in the student's 2 steps, not guided again.
    const plan = samplingPlan(web.json, { kind: 'dpmSolverPlusPlus', steps: 20, guidance: 5 });
    assert.deepEqual(plan, { kind: 'ddim', steps: 2, guidance: 1, folded: 3 });
    const { run, guided } = startSampling(web, plan, { seed: 5, cls: 7, count: 2 });
    assert.equal(guided, false);
    let events = 0, nfe = 0;
    const final = noGrad(() => {
      for (;;) {
        const r = run.next();
        if (r.done) return r.value;
        events++;
        nfe = r.value.nfe;
      }
    });
    assert.equal(events, 2);
    assert.equal(nfe, 2);
    // The library's sampling of the checkpoint itself (F32 weights), as `diffuse sample` runs a student.
    const ref = loadModelFromCheckpoint(student);
    const lib = await sampleImages(ref.model, ref.schedule, ref.config.objective, { count: 2, sampler: { kind: 'ddim', steps: 2 }, seed: 5, classes: [7, 7] });
    const d = maxAbsDiff(final.data, lib.data);
    // F16 weights: measured 1.5e-4 here (native backend).
    const tol = 5e-3;
    assert.ok(d < tol, `the explorer's and the library's samples differ by ${d} (F16 weights)`);
    // Guiding again would be another sampling, which the tolerance tells apart (measured 2.9e-2).
    const twice = await sampleImages(ref.model, ref.schedule, ref.config.objective, { count: 2, sampler: { kind: 'ddim', steps: 2 }, seed: 5, classes: [7, 7], guidanceScale: 3 });
    assert.ok(maxAbsDiff(twice.data, lib.data) > tol, 'guidance makes no difference here: the comparison proves nothing');
    t.diagnostic(`distilled student: explorer vs library max |Δ| ${d.toExponential(2)}; guided again: ${maxAbsDiff(twice.data, lib.data).toExponential(2)}`);
  });

  test('a distilled description is checked on load', () => {
    const desc = JSON.parse(readFileSync(join(DATA, 'mnist-unet.json'), 'utf8')) as WebModelJson;
    const weights = readFileSync(join(DATA, desc.weights.file));
    const bad: [unknown, RegExp][] = [
      [null, /field distilled must be an object/],
      [[4, 2], /field distilled must be an object/],
      [{ steps: 0, guidance: 2 }, /distilled\.steps must be a whole number/],
      [{ steps: 2.5, guidance: 2 }, /distilled\.steps must be a whole number/],
      [{ steps: '4', guidance: 2 }, /distilled\.steps must be a whole number/],
      [{ steps: 4000, guidance: 2 }, /distilled\.steps is 4000, more than the schedule's 1000 timesteps/],
      [{ steps: 4, guidance: NaN }, /distilled\.guidance must be a number from 0 to 100/],
      [{ steps: 4, guidance: -1 }, /distilled\.guidance must be a number from 0 to 100/],
      [{ steps: 4 }, /distilled\.guidance must be a number from 0 to 100/],
      [{ steps: 4, guidance: 2, teacher: 'x' }, /field distilled has unknown field teacher/],
    ];
    for (const [distilled, msg] of bad) {
      assert.throws(() => loadWebUNet({ ...desc, distilled }, weights, 'x.json'), (e: Error) => e.message.startsWith('x.json: ') && msg.test(e.message), JSON.stringify(distilled));
    }
    const ok = loadWebUNet({ ...desc, distilled: { steps: 4, guidance: 2 } }, weights);
    assert.deepEqual(ok.json.distilled, { steps: 4, guidance: 2 });
  });

  test('train_toy_model: a few steps write a model the loader reads', () => {
    const out = tmp();
    tsx('tools/train_toy_model.ts', '--dataset', 'moons', '--steps', '20', '--batch', '32', '--out', out);
    const { model, json } = loadWebMLP(readJson(join(out, 'toy-moons.json')), readFileSync(join(out, 'toy-moons.safetensors')));
    assert.equal(json.dataset, 'moons');
    const y = noGrad(() => model.forward(tensor(new Float32Array(8), [4, 2]), tensor(new Float32Array(4).fill(500), [4]))).data;
    assert.ok(y.every(Number.isFinite));
  });
});

describe('the shipped files (web/public/data)', () => {
  test('the MNIST model is a few MB of F16 and predicts the noise of held-out digits', () => {
    const desc = readJson(join(DATA, 'mnist-unet.json')) as { weights: { file: string } };
    const file = join(DATA, desc.weights.file);
    assert.ok(statSync(file).size < 3_000_000, 'the shipped weights exceed 3 MB');
    const { model, schedule, json } = loadWebUNet(desc, readFileSync(file));
    assert.equal(json.weights.dtype, 'F16');
    assert.equal(model.parameters().reduce((s, p) => s + p.size, 0), 1_114_209);
    const digits = loadDigits(readFileSync(join(DATA, 'mnist-test-digits.safetensors')));
    assert.ok(digits.n >= 100 && digits.height === 28 && digits.width === 28);
    assert.match(digits.metadata.source, /test split/);
    // ε-prediction error at t = 300 on 4 test digits: a trained model is far below 1 (the error of predicting 0).
    const n = 4, x0 = tensor(Float32Array.from(digits.pixels.subarray(0, n * 784), fromUint8), [n, 1, 28, 28]);
    const eps = randn(x0.shape, new Generator(1));
    const xt = qSample(schedule, x0, 300, eps);
    const out = noGrad(() => model.forward(xt, tensor(new Float32Array(n).fill(300), [n]), tensor(Int32Array.from(digits.labels.subarray(0, n)), [n], { dtype: 'int32' }))).data;
    let mse = 0;
    for (let i = 0; i < out.length; i++) mse += (out[i] - eps.data[i]) ** 2;
    mse /= out.length;
    assert.ok(mse < 0.2, `ε-prediction MSE ${mse}`);
  });

  test('every MNIST model of the reverse panel is shipped and is what the list says', () => {
    const full = JSON.parse(readFileSync(join(DATA, 'mnist-unet.json'), 'utf8')) as WebModelJson;
    const fullModel = loadWebUNet(full, readFileSync(join(DATA, full.weights.file)));
    assert.equal(MNIST_MODELS[0].name, 'mnist-unet');
    assert.deepEqual(MNIST_MODELS.filter((e) => e.steps !== undefined).map((e) => e.steps), [4, 1]);
    for (const entry of MNIST_MODELS) {
      const desc = JSON.parse(readFileSync(join(DATA, `${entry.name}.json`), 'utf8')) as WebModelJson;
      const file = join(DATA, desc.weights.file);
      assert.ok(statSync(file).size < 3_000_000, `${file} exceeds 3 MB`);
      const m = loadWebUNet(desc, readFileSync(file), `${entry.name}.json`);
      checkMnistModel(entry, m, fullModel);
      assert.equal(m.json.weights.dtype, 'F16');
      if (entry.steps !== undefined) {
        assert.equal(m.json.prediction, 'v', `${entry.name}: a student predicts v`);
        assert.ok(m.json.distilled!.guidance >= 1, `${entry.name}: guidance ${m.json.distilled!.guidance}`);
      }
    }
    assert.throws(() => checkMnistModel({ name: 'mnist-unet', steps: 4 }, fullModel, fullModel), /expected a student distilled to 4 steps, found no distilled record/);
  });

  test('the shipped students draw digits of the requested class in their steps (the MNIST judge, 50 samples each)', async () => {
    for (const entry of MNIST_MODELS.filter((e) => e.steps !== undefined)) {
      const desc = JSON.parse(readFileSync(join(DATA, `${entry.name}.json`), 'utf8')) as WebModelJson;
      const { model, schedule } = loadWebUNet(desc, readFileSync(join(DATA, desc.weights.file)), `${entry.name}.json`);
      const classes = Array.from({ length: 50 }, (_, i) => i % 10);
      const images = await sampleImages(model, schedule, { prediction: 'v', variance: 'fixedLarge', weighting: { kind: 'none' } },
        { count: 50, sampler: { kind: 'ddim', steps: entry.steps! }, seed: 0, classes });
      const judged = judgeSamples(images);
      const agreement = classes.filter((c, i) => judged.predictions[i] === c).length / 50;
      // Measured on the shipped files: 1,000 samples give 98.9% (4 steps) and 99.2% (1 step) confident.
      assert.ok(judged.confidentFraction >= 0.85 && agreement >= 0.85, `${entry.name}: confident ${judged.confidentFraction}, agreement ${agreement}`);
    }
  });

  test('the toy models load', () => {
    for (const name of ['swissroll', 'moons', '8gaussians']) {
      const desc = readJson(join(DATA, `toy-${name}.json`)) as { weights: { file: string } };
      const { json } = loadWebMLP(desc, readFileSync(join(DATA, desc.weights.file)));
      assert.equal(json.dataset, name);
    }
  });
});
