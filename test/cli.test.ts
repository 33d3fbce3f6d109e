// The `diffuse` command end to end on tiny runs: resume reproduces an uninterrupted run bit for bit, bad input
// gets one line and a non-zero exit, and nothing existing is overwritten or lost.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadMnist } from '../src/data/index.js';
import { NonFiniteLossError, Trainer, loadModelFromCheckpoint, readCheckpointJson, type RunConfig } from '../src/train/index.js';
import { parseSampleRequest, renderSamples, sampleArgs } from '../src/serve/index.js';
import { Tensor } from '../src/index.js';
import { normalizedMaxError } from './helpers/compare.js';

const tiny = ['--steps', '4', '--batch-size', '4', '--limit', '40', '--sample-every', '0', '--warmup', '1', '--checkpoint-every', '2'];

function diffuse(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['bin/diffuse.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'diffuse-cli-'));
const snapshot = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));

describe('diffuse train', () => {
  test('an interrupted and resumed run ends with the same weights as an uninterrupted one', () => {
    const a = join(tmp(), 'a'), b = join(tmp(), 'b');
    assert.equal(diffuse('train', '--out', a, ...tiny).code, 0);
    // --time 0s stops after the first step, checkpointing, as Ctrl-C does.
    assert.equal(diffuse('train', '--out', b, ...tiny, '--time', '0s').code, 0);
    assert.equal(readCheckpointJson<unknown, { step: number }>(b).state.step, 1);
    const r = diffuse('train', '--out', b, '--resume');
    assert.equal(r.code, 0, r.err);
    for (const role of ['model', 'ema', 'optimizer']) {
      const fa = readdirSync(a).find((f) => f.startsWith(`${role}-`))!, fb = readdirSync(b).find((f) => f.startsWith(`${role}-`))!;
      assert.equal(fa, `${role}-00000004.safetensors`);
      assert.ok(readFileSync(join(a, fa)).equals(readFileSync(join(b, fb))), `${role} weights differ after resuming`);
    }
    assert.ok(statSync(join(a, 'loss.png')).size > 1000);
    // The default model has one group count for every norm (so it exports as a diffusers UNet2DModel).
    const model = readCheckpointJson<RunConfig, unknown>(a).config.model.config;
    assert.deepEqual([model.normGroups, model.normGroupRule], [8, 'fixed']);
    assert.equal(readFileSync(join(a, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 4);
  });

  test('--gradient-checkpointing trains the same weights, up to the order of a few sums', () => {
    const a = join(tmp(), 'a'), b = join(tmp(), 'b');
    assert.equal(diffuse('train', '--out', a, ...tiny).code, 0);
    const r = diffuse('train', '--out', b, ...tiny, '--gradient-checkpointing');
    assert.equal(r.code, 0, r.err);
    // the same losses; the weights within float rounding (the time embedding's gradient is summed per block)
    const losses = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
    assert.deepEqual(losses(b), losses(a));
    const ma = loadModelFromCheckpoint(a), mb = loadModelFromCheckpoint(b);
    const pa = ma.model.parameters(), pb = mb.model.parameters();
    pa.forEach((p, i) => {
      const err = normalizedMaxError(pb[i].data as Float32Array, p.data as Float32Array);
      // (1e-4: AdamW's first steps divide by √v, so gradients equal to ~1e-7 give weights equal to ~1e-5)
      assert.ok(err <= 1e-4, `parameter ${i} differs by ${err.toExponential(2)} with --gradient-checkpointing`);
    });
  });

  test('Ctrl-C saves a checkpoint before exiting, and the run resumes from it', async () => {
    const dir = join(tmp(), 'int');
    const child = spawn(process.execPath, ['bin/diffuse.mjs', 'train', '--out', dir, ...tiny, '--steps', '10000', '--checkpoint-every', '0'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += String(d); });
    const metrics = join(dir, 'metrics.jsonl');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 3) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 130, err);
    assert.match(err, /interrupted: saving a checkpoint/);
    const step = readCheckpointJson<unknown, { step: number }>(dir).state.step;
    assert.ok(step >= 3, `checkpoint at step ${step}`);
    const r = diffuse('train', '--out', dir, '--resume', '--steps', String(step + 1));
    assert.equal(r.code, 0, r.err);
    assert.equal(readCheckpointJson<unknown, { step: number }>(dir).state.step, step + 1);
  });

  test('bad options get one line naming the option and a non-zero exit', () => {
    const out = join(tmp(), 'x');
    for (const [args, pattern] of [
      [['--steps', 'abc'], /--steps must be an integer in 1…1000000000, got 'abc'/],
      [['--lr', 'fast'], /--lr must be a number/],
      [['--preset', 'huge'], /--preset: unknown preset 'huge'/],
      [['--prediction', 'noise'], /--prediction must be epsilon, x0 or v/],
      [['--dataset', '/nonexistent/folder', '--image-size', '16'], /nonexistent\/folder/],
      [['--norm-groups', '0'], /--norm-groups must be an integer in 1…1024, got '0'/],
      [['--clusters', '100', '--limit', '40'], /--clusters 100: the dataset has only 40 images/],
      [['--norm-groups', '12'], /^diffuse: --norm-groups 12: normGroups 12 must divide the channel count of every norm \(32, 64, 96, 128\), and does not divide 32$/m],
    ] as [string[], RegExp][]) {
      const r = diffuse('train', '--out', out, ...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, pattern);
      assert.equal(r.err.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.err}`);
    }
  });

  test('without labels the model conditions on k-means clusters: recorded, resumed, sampled by size with its guidance', () => {
    const dir = join(tmp(), 'clusters');
    const r = diffuse('train', '--out', dir, ...tiny, '--limit', '300', '--no-class-cond', '--time', '0s');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /classes: 6 k-means clusters of the images, no labels/);
    const json = readCheckpointJson<RunConfig, { step: number }>(dir);
    assert.equal(json.config.model.config.numClasses, 6);
    assert.deepEqual([json.config.clusters!.sizes.length, json.config.clusters!.sizes.reduce((a, b) => a + b), json.config.clusters!.guidance,
      json.config.clusters!.seed], [6, 300, 2.5, 0]);
    assert.equal(json.config.trainer.emaDecay, 0.995);
    // Resuming recomputes the same clusters.
    const resumed = diffuse('train', '--out', dir, '--resume');
    assert.equal(resumed.code, 0, resumed.err);
    const s = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '2', '--out', join(tmp(), 's'));
    assert.equal(s.code, 0, s.err);
    // Drawn clusters sample with the SDE variant by default; --no-sde or a named sampler gives the ODE one.
    assert.match(s.out, /\(dpmSolverPlusPlus SDE, 2 steps, guidance 2\.5, clusters drawn by size\)/);
    const ode = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '2', '--no-sde', '--out', join(tmp(), 'ode'));
    assert.equal(ode.code, 0, ode.err);
    assert.match(ode.out, /\(dpmSolverPlusPlus, 2 steps, guidance 2\.5, clusters drawn by size\)/);
    const named = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '2', '--sampler', 'dpmSolverPlusPlus', '--out', join(tmp(), 'named'));
    assert.match(named.out, /\(dpmSolverPlusPlus, 2 steps/);
    const picked = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '2', '--class', '1', '--out', join(tmp(), 'picked'));
    assert.match(picked.out, /\(dpmSolverPlusPlus, 2 steps, guidance 2\.5\)/);
    const notSde = diffuse('sample', '--checkpoint', dir, '--count', '4', '--sampler', 'ddim', '--sde', '--out', join(tmp(), 'x'));
    assert.notEqual(notSde.code, 0);
    assert.match(notSde.err, /^diffuse: --sde: only dpmSolverPlusPlus has an SDE variant, not --sampler ddim$/m);
    // Recorded sizes that the images no longer give: one line naming the field, nothing written.
    const path = join(dir, 'checkpoint.json'), raw = JSON.parse(readFileSync(path, 'utf8'));
    raw.config.clusters.sizes = [1, 1, 1, 1, 1, 295];
    raw.config.trainer.steps = 8;
    writeFileSync(path, JSON.stringify(raw));
    const before = snapshot(dir);
    const bad = diffuse('train', '--out', dir, '--resume');
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /its k-means clusters differ from field config\.clusters\.sizes of .*checkpoint\.json/);
    assert.equal(bad.err.trim().split('\n').length, 1, bad.err);
    assert.deepEqual(snapshot(dir), before);
    // --clusters 0: a plain unconditional model.
    const plain = join(tmp(), 'plain');
    assert.equal(diffuse('train', '--out', plain, ...tiny, '--limit', '300', '--no-class-cond', '--clusters', '0', '--time', '0s').code, 0);
    const pj = readCheckpointJson<RunConfig, unknown>(plain).config;
    assert.deepEqual([pj.model.config.numClasses, pj.clusters], [0, undefined]);
  });

  test('with labels the clusters follow them: a share trains on its cluster, sampling without a class draws clusters', async () => {
    const dir = join(tmp(), 'hybrid'), other = join(tmp(), 'hybrid2');
    const r = diffuse('train', '--out', dir, ...tiny, '--limit', '300');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /classes: 10 labels and 3 k-means clusters \(20% of the images train on their cluster/);
    const json = readCheckpointJson<RunConfig, unknown>(dir).config;
    assert.equal(json.model.config.numClasses, 13);
    assert.deepEqual([json.clusters!.firstClass, json.clusters!.share, json.clusters!.sizes.length, json.clusters!.sizes.reduce((a, b) => a + b), json.trainer.emaDecay],
      [10, 0.2, 3, 300, 0.999]);
    // Interrupted and resumed: the same weights as the uninterrupted run (the clusters are recomputed).
    assert.equal(diffuse('train', '--out', other, ...tiny, '--limit', '300', '--time', '0s').code, 0);
    const resumed = diffuse('train', '--out', other, '--resume');
    assert.equal(resumed.code, 0, resumed.err);
    const weights = (d: string) => readFileSync(join(d, readdirSync(d).find((f) => f.startsWith('model-'))!));
    assert.ok(weights(dir).equals(weights(other)), 'weights differ after resuming');
    // The share changes training: another share, other weights.
    const shared = join(tmp(), 'hybrid3');
    assert.equal(diffuse('train', '--out', shared, ...tiny, '--limit', '300', '--cluster-share', '0.6').code, 0);
    assert.ok(!weights(dir).equals(weights(shared)), 'the share changed nothing');
    // Without --class: the labels in turn, unguided; --unconditional draws clusters at their guidance.
    const s = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '2', '--out', join(tmp(), 's'));
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /\(dpmSolverPlusPlus, 2 steps, guidance 1\)/);
    const u = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '2', '--unconditional', '--out', join(tmp(), 'u'));
    assert.equal(u.code, 0, u.err);
    assert.match(u.out, /\(dpmSolverPlusPlus SDE, 2 steps, guidance 2\.5, clusters drawn by size\)/);
    const evalDir = join(tmp(), 'e');
    const e = diffuse('eval', '--checkpoint', dir, '--count', '8', '--steps', '2', '--null-class', '--out', evalDir);
    assert.equal(e.code, 0, e.err);
    const report = JSON.parse(readFileSync(join(evalDir, 'eval.json'), 'utf8'));
    assert.deepEqual([report.nullClass, report.conditional, report.guidance, report.clusters], [true, false, 1, undefined]);
    // A service request without a class draws the same images as `diffuse sample` with the request's arguments.
    const modelInfo = { numClasses: 13, T: 1000, unconditionalGuidance: 2.5 };
    const request = parseSampleRequest({ count: 3, steps: 2, seed: 5, unconditional: true }, modelInfo);
    assert.deepEqual([request.guidance, sampleArgs(request).includes('--unconditional')], [2.5, true]);
    const { model, schedule, config } = loadModelFromCheckpoint(dir);
    const rendered = await renderSamples({ model, schedule, objective: config.objective, clusters: config.clusters }, request);
    const served = join(tmp(), 'served');
    const viaCli = diffuse('sample', '--checkpoint', dir, '--out', served, ...sampleArgs(request));
    assert.equal(viaCli.code, 0, viaCli.err);
    assert.ok(Buffer.from(rendered.grid).equals(readFileSync(join(served, 'samples.png'))), 'the service and diffuse sample differ');
    assert.equal(parseSampleRequest({ count: 3 }, modelInfo).guidance, 1);
    assert.throws(() => parseSampleRequest({ count: 3, class: 2, unconditional: true }, modelInfo), /^RequestError: unconditional: the request names class 2$/);
    assert.throws(() => parseSampleRequest({ count: 3, unconditional: 'yes' }, modelInfo), /unconditional: expected true or false, got the string "yes"/);
    // Bad combinations: one line each.
    for (const [args, pattern] of [
      [['sample', '--checkpoint', dir, '--unconditional', '--class', '3', '--out', join(tmp(), 'x')], /^diffuse: --unconditional: --class 3 names a class$/m],
      [['train', '--out', join(tmp(), 'y'), ...tiny, '--limit', '300', '--cluster-share', '0.95'], /--cluster-share 0\.95: with --cond-dropout 0\.1 that is over all of the images/],
      [['train', '--out', join(tmp(), 'z'), ...tiny, '--limit', '300', '--no-class-cond', '--cluster-share', '0.3'], /--cluster-share: the run has no labels and clusters to share between/],
    ] as [string[], RegExp][]) {
      const bad = diffuse(...args);
      assert.notEqual(bad.code, 0, args.join(' '));
      assert.match(bad.err, pattern);
      assert.equal(bad.err.trim().split('\n').length, 1, bad.err);
    }
    // A share over what the null class leaves is a one-line error naming the field.
    const path = join(dir, 'checkpoint.json'), raw = JSON.parse(readFileSync(path, 'utf8'));
    raw.config.clusters.share = 0.95;
    writeFileSync(path, JSON.stringify(raw));
    const info = diffuse('info', '--checkpoint', dir);
    assert.notEqual(info.code, 0);
    assert.match(info.err, /field config\.clusters\.share must be a number in \[0, 0\.9\], got 0\.95/);
  });

  test('a used output folder is neither overwritten nor resumed without asking', () => {
    const dir = join(tmp(), 'run');
    assert.equal(diffuse('train', '--out', dir, ...tiny).code, 0);
    const before = snapshot(dir);
    const r = diffuse('train', '--out', dir, ...tiny);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /is not empty: pass --resume/);
    assert.deepEqual(snapshot(dir), before);
  });
});

describe('diffuse sample and info with damaged checkpoints', () => {
  const dir = join(tmp(), 'ck');
  test('setup: a small checkpoint', () => {
    assert.equal(diffuse('train', '--out', dir, ...tiny).code, 0);
  });

  test('sampling writes a grid', () => {
    const out = join(tmp(), 's');
    const r = diffuse('sample', '--checkpoint', dir, '--count', '4', '--steps', '3', '--out', out, '--single');
    assert.equal(r.code, 0, r.err);
    assert.ok(statSync(join(out, 'samples.png')).size > 100);
    assert.equal(readdirSync(out).filter((f) => f.startsWith('sample-')).length, 4);
  });

  test('a truncated weight file is named', () => {
    const d = join(tmp(), 'trunc');
    assert.equal(diffuse('train', '--out', d, ...tiny).code, 0);
    const f = readdirSync(d).find((n) => n.startsWith('ema-'))!;
    const bytes = readFileSync(join(d, f));
    writeFileSync(join(d, f), bytes.subarray(0, bytes.length - 100));
    const r = diffuse('sample', '--checkpoint', d, '--count', '1', '--steps', '2', '--out', join(tmp(), 'o'));
    assert.notEqual(r.code, 0);
    assert.match(r.err, new RegExp(`${f} \\(named by checkpoint.json files.ema\\): \\d+ bytes where \\d+ were recorded \\(truncated or replaced\\)`));
  });

  test('a tampered weight file is named', () => {
    const d = join(tmp(), 'tamper');
    assert.equal(diffuse('train', '--out', d, ...tiny).code, 0);
    const f = readdirSync(d).find((n) => n.startsWith('model-'))!;
    const bytes = readFileSync(join(d, f));
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(join(d, f), bytes);
    const r = diffuse('info', '--checkpoint', d);
    assert.notEqual(r.code, 0);
    assert.match(r.err, new RegExp(`${f}: checksum does not match`));
  });

  test('a checkpoint whose config does not match its weights is refused', () => {
    const d = join(tmp(), 'mismatch');
    assert.equal(diffuse('train', '--out', d, ...tiny).code, 0);
    const json = JSON.parse(readFileSync(join(d, 'checkpoint.json'), 'utf8'));
    json.config.model.config.modelChannels = 64;
    writeFileSync(join(d, 'checkpoint.json'), JSON.stringify(json));
    const r = diffuse('sample', '--checkpoint', d, '--count', '1', '--out', join(tmp(), 'o'));
    assert.notEqual(r.code, 0);
    // Refused before the bigger model is built: its weight file is too small for it.
    assert.match(r.err, /checkpoint.json: field files.model.bytes is \d+, too small for the \d+ parameters config.model describes/);
  });

  test('a missing checkpoint is named', () => {
    const r = diffuse('info', '--checkpoint', join(tmp(), 'none'));
    assert.notEqual(r.code, 0);
    assert.match(r.err, /no checkpoint here/);
  });
});

describe('non-finite loss', () => {
  test('stops training and keeps the last good checkpoint', async () => {
    const dir = join(tmp(), 'nan');
    assert.equal(diffuse('train', '--out', dir, ...tiny).code, 0);
    const before = snapshot(dir);
    const json = readCheckpointJson<RunConfig, never>(dir);
    const trainer = new Trainer({ ...json.config, trainer: { ...json.config.trainer, steps: 8 } }, loadMnist({ split: 'train', limit: 40 }),
      { dir, json: json as never });
    trainer.model.forward = (x: Tensor) => new Tensor(new Float32Array(x.size).fill(NaN), x.shape);
    await assert.rejects(trainer.train({ outDir: dir, resume: true }), (e: Error) => e instanceof NonFiniteLossError && /training loss is NaN at step 5/.test(e.message));
    const after = snapshot(dir);
    for (const f of Object.keys(before)) if (f !== 'metrics.jsonl') assert.equal(after[f], before[f], `${f} changed`);
  });
});
