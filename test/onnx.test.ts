/**
 * ONNX export: onnxruntime-node runs the exported graph on the inputs diffuse runs, and the results agree within
 * 1e-4 (max abs): the default UNet (the tiny preset, class-conditional, 28×28, non-zero init so every path carries
 * signal) and the diffusers UNet2DModel fixtures (test/fixtures/diffusers/unet-*), with their diffusers inputs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

import * as D from '../src/index.js';
import { exportOnnx } from '../src/interop/onnx.js';
import { loadDiffusersUNet } from '../src/interop/diffusers.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { UNet, unetPreset } from '../src/nn/unet.js';
import { ROUND_TRIP_RUNS, writeRoundTripRun } from './helpers/diffusersRoundtrip.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'diffusers');
const TOL = 1e-4;

interface Inputs { x: D.Tensor; t: Float32Array; classes: Int32Array | null }

async function compare(model: UNet | D.UNet2DModel, inp: Inputs): Promise<number> {
  const bytes = exportOnnx(model);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', Float32Array.from(inp.x.data), [...inp.x.shape]),
    timestep: new ort.Tensor('float32', inp.t, [inp.t.length]),
  };
  if (inp.classes) feeds.class_labels = new ort.Tensor('int64', BigInt64Array.from([...inp.classes].map(BigInt)), [inp.classes.length]);
  const res = await session.run(feeds);
  const theirs = res.out.data as Float32Array;
  const ct = inp.classes ? D.tensor(inp.classes, [inp.classes.length], { dtype: 'int32' }) : undefined;
  const ours = D.noGrad(() => model.forward(inp.x, D.tensor(inp.t, [inp.t.length]), ct));
  assert.deepEqual(res.out.dims, ours.shape);
  let err = 0;
  ours.data.forEach((v, i) => { err = Math.max(err, Math.abs(v - theirs[i])); });
  return err;
}

describe('ONNX export, run by onnxruntime-node', () => {
  test('default UNet (tiny preset, class-conditional)', async (t) => {
    D.setBackend(D.availableBackends()[0]);
    const model = new UNet(unetPreset('tiny', { numClasses: 10 }), { seed: 3, zeroInit: false }).eval();
    const x = D.randn([3, 1, 28, 28], new D.Generator(1));
    const err = await compare(model, { x, t: Float32Array.from([999, 421.5, 0]), classes: Int32Array.from([3, 9, 10]) });
    t.diagnostic(`max abs ${err.toExponential(2)}`);
    assert.ok(err <= TOL, `${err}`);
  });

  test('a diffuse UNet with avgpool downsampling, learned σ and no mid attention', async (t) => {
    const model = new UNet(unetPreset('tiny', { downsample: 'avgpool', learnSigma: true, midAttention: false, attentionLevels: [1], numHeads: 2 }), { seed: 4, zeroInit: false }).eval();
    const err = await compare(model, { x: D.randn([2, 1, 28, 28], new D.Generator(2)), t: Float32Array.from([10, 700]), classes: null });
    t.diagnostic(`max abs ${err.toExponential(2)}`);
    assert.ok(err <= TOL, `${err}`);
  });

  for (const name of readdirSync(FIX).filter((f) => f.startsWith('unet-')).sort()) {
    test(`diffusers ${name}`, async (t) => {
      const model = loadDiffusersUNet(join(FIX, name));
      const io = parseSafetensors(readFileSync(join(FIX, name, 'io.safetensors')));
      const x = io.tensors.get('x')!, ts = io.tensors.get('t')!, cl = io.tensors.get('class_labels');
      const err = await compare(model, {
        x: D.tensor(Float32Array.from(x.data), x.shape), t: Float32Array.from(ts.data), classes: cl ? Int32Array.from(cl.data) : null,
      });
      t.diagnostic(`max abs ${err.toExponential(2)}`);
      assert.ok(err <= TOL, `${err}`);
    });
  }

  test('diffuse export --format onnx (a run and a diffusers folder); bad input', () => {
    const dir = mkdtempSync(join(tmpdir(), 'diffuse-onnx-'));
    const run = (...args: string[]) => spawnSync(process.execPath, ['bin/diffuse.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
    try {
      writeRoundTripRun(ROUND_TRIP_RUNS[0], join(dir, 'run'));
      const a = run('export', '--checkpoint', join(dir, 'run'), '--format', 'onnx', '--out', join(dir, 'm.onnx'));
      assert.equal(a.status, 0, a.stderr);
      assert.ok(existsSync(join(dir, 'm.onnx')));
      const again = run('export', '--checkpoint', join(dir, 'run'), '--format', 'onnx', '--out', join(dir, 'm.onnx'));
      assert.equal(again.status, 2);
      assert.match(again.stderr, /m\.onnx exists/);
      const b = run('export', '--checkpoint', join(FIX, 'unet-fourier'), '--format', 'onnx', '--out', join(dir, 'f.onnx'));
      assert.equal(b.status, 0, b.stderr);
      const c = run('export', '--checkpoint', join(dir, 'nothing'), '--format', 'onnx', '--out', join(dir, 'n.onnx'));
      assert.notEqual(c.status, 0);
      assert.equal(c.stderr.trim().split('\n').length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
