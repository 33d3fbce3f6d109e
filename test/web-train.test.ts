// What the explorer's Train view relies on, in Node: the input rules of web/src/validate.ts, and the in-memory
// checkpoint (Trainer.checkpointContents → encodeCheckpointFiles + checkpointJsonBytes) being byte for byte what
// saveCheckpoint writes, with Trainer.restoreState continuing a run exactly where it was.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  Generator, Trainer, checkpointJsonBytes, encodeCheckpointFiles, normalizeScheduleConfig, setBackend, unetPreset, type ImageDataset,
  type RunConfig,
} from '../src/index.js';
import { loadCheckpointGroup, readCheckpointJson, saveCheckpoint } from '../src/node.js';
import { GUIDANCE, SEED, parseField, samplerHint, stepsRule } from '../web/src/validate.js';

test('field rules: no value is clamped or replaced, every refusal says what is accepted', () => {
  const steps = stepsRule('ddim');
  assert.deepEqual(parseField('20', steps), { ok: true, value: 20 });
  assert.deepEqual(parseField(' 7 ', steps), { ok: true, value: 7 });
  for (const bad of ['', '0', '-5', 'abc', '1e9', '1001', '2.5', 'NaN', '1e2']) {
    const r = parseField(bad, steps);
    assert.equal(r.ok, false, `steps '${bad}' accepted`);
    if (!r.ok) assert.match(r.error, /whole number from 1 to 1000/);
  }
  assert.equal(parseField('501', stepsRule('heun')).ok, false);
  assert.equal(parseField('500', stepsRule('heun')).ok, true);
  for (const bad of ['-1', '1e300', '', '4294967296', '1.5']) assert.equal(parseField(bad, SEED).ok, false, `seed '${bad}' accepted`);
  assert.deepEqual(parseField('4294967295', SEED), { ok: true, value: 4294967295 });
  for (const bad of ['', 'NaN', '1e6', '-1', 'Infinity', '1,5']) assert.equal(parseField(bad, GUIDANCE).ok, false, `guidance '${bad}' accepted`);
  assert.deepEqual(parseField('2.5', GUIDANCE), { ok: true, value: 2.5 });
  assert.deepEqual(parseField('.5', GUIDANCE), { ok: true, value: 0.5 });
  assert.deepEqual(parseField('-0', GUIDANCE), { ok: true, value: 0 });
  assert.match(samplerHint('heun', 2), /returns noise/);
  assert.equal(samplerHint('heun', 4), '');
  assert.match(samplerHint('predictorCorrector', 5), /returns noise/);
  assert.equal(samplerHint('predictorCorrector', 6), '');
  assert.equal(samplerHint('dpmSolverPlusPlus', 2), '');
});

/** 24 random 14×14 one-channel "images" in 3 classes. */
function toyData(): ImageDataset {
  const gen = new Generator(5), n = 24;
  const images = Float32Array.from({ length: n * 196 }, () => gen.uniform() * 2 - 1);
  return { name: 'toy', images, labels: Int32Array.from({ length: n }, (_, i) => i % 3), n, channels: 1, height: 14, width: 14, numClasses: 3,
    classNames: ['a', 'b', 'c'], flipSafe: false };
}

function config(): RunConfig {
  return {
    dataset: 'toy',
    model: { kind: 'unet', config: unetPreset('tiny', { modelChannels: 8, channelMult: [1, 2], attentionLevels: [], midAttention: false, normGroups: 4, imageSize: 14, inChannels: 1, numClasses: 3 }) },
    schedule: normalizeScheduleConfig({ kind: 'linear', T: 1000 }),
    objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
    trainer: { steps: 6, batchSize: 4, accumulate: 1, lr: 2e-3, minLr: 1e-4, warmupSteps: 2, weightDecay: 0, gradClip: 1, emaDecay: 0.99,
      condDropout: 0.1, seed: 3, sampleEvery: 0, checkpointEvery: 0, previewSampler: { kind: 'ddim', steps: 5 }, previewCount: 4 },
  };
}

test('the in-memory checkpoint is what saveCheckpoint writes, and restoreState continues the run exactly', async () => {
  setBackend('js');
  const data = toyData();
  const a = new Trainer(config(), data);
  for (let i = 0; i < 3; i++) await a.trainStep();
  const { config: cfg, state, groups } = await a.checkpointContents(1.5);
  const files = encodeCheckpointFiles(a.step, groups).map((f) => ({ ...f, sha256: createHash('sha256').update(f.bytes).digest('hex') }));
  const { bytes } = checkpointJsonBytes(cfg, state, files);
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-web-train-'));
  try {
    saveCheckpoint(dir, a.step, cfg, state, groups);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'checkpoint.json'))), bytes);
    for (const f of files) assert.deepEqual(new Uint8Array(readFileSync(join(dir, f.file))), f.bytes, f.file);
    // The trainer the browser builds from those files goes on exactly as the original.
    const json = readCheckpointJson(dir);
    const b = new Trainer(config(), data);
    b.restoreState(state, { model: loadCheckpointGroup(dir, json, 'model'), ema: loadCheckpointGroup(dir, json, 'ema'), optimizer: loadCheckpointGroup(dir, json, 'optimizer') });
    assert.equal(b.step, 3);
    for (let i = 0; i < 3; i++) assert.equal((await b.trainStep()).loss, (await a.trainStep()).loss, `step ${a.step}`);
    const wa = a.model.stateDict(), wb = b.model.stateDict();
    for (const [k, v] of wa) assert.deepEqual(wb.get(k)!.data, v.data, k);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
