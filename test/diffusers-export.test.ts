/**
 * diffuse → diffusers folder → diffusers, and back.
 *
 * diffusers' own DDPMPipeline.from_pretrained (from its source under Debian's PyTorch) cannot run here: it ran when
 * the fixtures were made (tools/diffusers_roundtrip.ts exports the runs of test/helpers/diffusersRoundtrip.ts;
 * tools/gen_diffusers_fixtures.py roundtrip loads them and records diffusers' outputs in roundtrip-*.safetensors).
 * This test exports the same runs again — same seeds, so the same bytes: the weights' SHA-256 must equal the one
 * diffusers loaded — and requires diffuse's outputs to equal diffusers' within 1e-4, for diffuse's own UNet and for
 * the exported folder read back by diffuse's UNet2DModel loader.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as D from '../src/index.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { exportCheckpointToDiffusers, loadDiffusersPipeline, sampleDiffusersPipeline } from '../src/interop/diffusers.js';
import { unet2DConfigFor } from '../src/interop/toDiffusers.js';
import { unetPreset } from '../src/nn/unet.js';
import { ROUND_TRIP_RUNS, writeRoundTripRun } from './helpers/diffusersRoundtrip.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'diffusers');
const TOL = 1e-4;
const tmp = () => mkdtempSync(join(tmpdir(), 'diffuse-export-'));

function diffuse(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['bin/diffuse.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('export to diffusers: diffusers loads the folder and computes what diffuse computes', () => {
  for (const r of ROUND_TRIP_RUNS) {
    test(r.name, (t) => {
      D.setBackend(D.availableBackends()[0]);
      const path = join(FIX, `roundtrip-${r.name}.safetensors`);
      const fx = parseSafetensors(readFileSync(path), { name: path });
      const dir = tmp();
      try {
        const model = writeRoundTripRun(r, join(dir, 'run'));
        exportCheckpointToDiffusers(join(dir, 'run'), join(dir, 'out'));
        const weights = readFileSync(join(dir, 'out', 'unet', 'diffusion_pytorch_model.safetensors'));
        assert.equal(createHash('sha256').update(weights).digest('hex'), fx.metadata.weights_sha256, 'the exported weights are the bytes diffusers loaded');
        const x = fx.tensors.get('x')!, ts = fx.tensors.get('t')!, ref = fx.tensors.get('out_diffusers')!, cl = fx.tensors.get('class_labels');
        const xt = D.tensor(Float32Array.from(x.data), x.shape), tt = D.tensor(Float32Array.from(ts.data), ts.shape);
        const ct = cl ? D.tensor(Int32Array.from(cl.data), cl.shape, { dtype: 'int32' }) : undefined;
        const ours = D.noGrad(() => model.forward(xt, tt, ct));
        const e1 = maxAbs(ours.data, ref.data);
        // The exported folder, read back by diffuse's own diffusers loader.
        const p = loadDiffusersPipeline(join(dir, 'out'));
        const back = D.noGrad(() => p.unet.forward(xt, tt, ct));
        const e2 = maxAbs(back.data, ref.data);
        t.diagnostic(`max abs vs diffusers: diffuse UNet ${e1.toExponential(2)}, folder read back ${e2.toExponential(2)}`);
        assert.ok(e1 <= TOL && e2 <= TOL, `${e1} ${e2}`);
        // The scheduler diffusers built from the exported config is the one diffuse reads.
        const theirs = JSON.parse(fx.metadata.scheduler_config) as Record<string, unknown>;
        for (const [k, v] of Object.entries(p.scheduler.config)) assert.deepEqual(v, theirs[k], `scheduler field ${k}`);
        assert.equal(fx.metadata.pipeline, 'DDPMPipeline');
        if (!cl) assert.deepEqual(JSON.parse(fx.metadata.pipeline_call_shape), [1, r.model.imageSize, r.model.imageSize, r.model.inChannels]);
        // Sampling the folder in diffuse runs the exported scheduler (2 steps keep the test short).
        const s = sampleDiffusersPipeline(p, { count: 2, steps: 2, seed: 0, classes: cl ? [1, 2] : undefined });
        assert.deepEqual(s.shape, [2, r.model.inChannels, r.model.imageSize, r.model.imageSize]);
        assert.ok([...s.data].every(Number.isFinite));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('what UNet2DModel cannot express is refused with the reason', () => {
    // A run from before normGroupRule (the presets then had normGroups 32, per channel): refused, and why.
    const { normGroupRule: _, ...old } = unetPreset('tiny', { numClasses: 10, normGroups: 32 });
    assert.throws(() => unet2DConfigFor(old), /norms use different group counts \(8 for 32 channels, 16 for 64 channels, 24 for 96 channels, 32 for 128 channels\)/);
    assert.throws(() => unet2DConfigFor(unetPreset('tiny', { normGroups: 8, downsample: 'avgpool' })), /downsample 'avgpool'/);
    assert.throws(() => unet2DConfigFor(unetPreset('tiny', { normGroups: 8, channelMult: [2, 2], attentionLevels: [1] })), /channelMult\[0\] = 2/);
    assert.throws(() => unet2DConfigFor(unetPreset('base', { normGroups: 8, attentionLevels: [0, 2] })), /attention head sizes differ/);
    // Every preset as it is (one group count for all norms), and with any other count that fits.
    for (const [preset, groups] of [['tiny', 8], ['small', 16], ['base', 32]] as const) {
      assert.equal(unet2DConfigFor(unetPreset(preset, { numClasses: 10 })).norm_num_groups, groups);
      assert.equal(unet2DConfigFor(unetPreset(preset, { normGroups: 4 })).norm_num_groups, 4);
    }
    // The per-channel rule exports where it happens to give one count.
    assert.equal(unet2DConfigFor({ ...old, normGroups: 8 }).norm_num_groups, 8);
  });
});

describe('diffuse export / sample with diffusers folders (CLI)', () => {
  test('export writes a pipeline folder, sample reads it; errors are one line with exit 2; nothing is overwritten', () => {
    const dir = tmp();
    try {
      const r = ROUND_TRIP_RUNS[0];
      writeRoundTripRun(r, join(dir, 'run'));
      const out = join(dir, 'pipe');
      const e = diffuse('export', '--checkpoint', join(dir, 'run'), '--format', 'diffusers', '--out', out);
      assert.equal(e.code, 0, e.err);
      assert.match(e.out, /diffuse export: diffusers, 4 files/);
      for (const f of ['model_index.json', 'unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'scheduler/scheduler_config.json']) assert.ok(existsSync(join(out, f)), f);
      const again = diffuse('export', '--checkpoint', join(dir, 'run'), '--format', 'diffusers', '--out', out);
      assert.equal(again.code, 1);
      assert.match(again.err, /exists and is not an empty folder/);
      const s = diffuse('sample', '--checkpoint', out, '--count', '2', '--steps', '2', '--class', '4', '--out', join(dir, 'samples'));
      assert.equal(s.code, 0, s.err);
      assert.match(s.out, /2 samples \(DDPMPipeline with DDPMScheduler, 2 steps\)/);
      assert.ok(existsSync(join(dir, 'samples', 'samples.png')));
      // A bare UNet folder samples too (diffusers' default DDPMScheduler).
      const u = diffuse('sample', '--checkpoint', join(out, 'unet'), '--count', '1', '--steps', '1', '--class', '0', '--out', join(dir, 's2'));
      assert.equal(u.code, 0, u.err);
      const bad = diffuse('export', '--checkpoint', join(dir, 'run'), '--format', 'tflite', '--out', join(dir, 'x'));
      assert.equal(bad.code, 2);
      assert.match(bad.err, /unknown format 'tflite'/);
      const g = diffuse('sample', '--checkpoint', out, '--count', '1', '--guidance', '2', '--out', join(dir, 's3'));
      assert.equal(g.code, 2);
      assert.match(g.err, /no null class/);
      // A run from before normGroupRule with the old presets' per-channel group counts cannot be one UNet2DModel
      // norm_num_groups: exit 2, the reason, nothing written.
      const cfgPath = join(dir, 'run', 'checkpoint.json');
      const json = JSON.parse(readFileSync(cfgPath, 'utf8'));
      json.config.model.config.normGroups = 32;
      delete json.config.model.config.normGroupRule;
      writeFileSync(cfgPath, JSON.stringify(json));
      const ne = diffuse('export', '--checkpoint', join(dir, 'run'), '--format', 'diffusers', '--out', join(dir, 'ne'));
      assert.equal(ne.code, 2, ne.err);
      assert.match(ne.err, /cannot express this model: its norms use different group counts/);
      assert.equal(ne.err.trim().split('\n').length, 1);
      assert.ok(!existsSync(join(dir, 'ne')));
      // A broken folder: one line naming the file and the field.
      mkdirSync(join(dir, 'broken'));
      writeFileSync(join(dir, 'broken', 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline' }));
      const b = diffuse('sample', '--checkpoint', join(dir, 'broken'), '--count', '1', '--out', join(dir, 's4'));
      assert.equal(b.code, 1);
      assert.match(b.err, /model_index\.json: _class_name = "StableDiffusionPipeline" is not supported/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
