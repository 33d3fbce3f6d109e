/**
 * Step 1 of the diffusers round trip: writes the diffuse runs of test/helpers/diffusersRoundtrip.ts, exports each as
 * a diffusers pipeline folder and writes the inputs, under runs/diffusers-roundtrip/. Step 2 is
 * `/usr/bin/python3 tools/gen_diffusers_fixtures.py <diffusers>/src roundtrip`, which loads each folder with
 * diffusers' own DDPMPipeline.from_pretrained and records its outputs in test/fixtures/diffusers/roundtrip-*.
 *
 *   npx tsx tools/diffusers_roundtrip.ts
 *
 * With `--checkpoint DIR …` it exports those trained runs instead (EMA weights), with diffuse's outputs on seeded
 * inputs, under runs/diffusers-check/; `tools/gen_diffusers_fixtures.py <diffusers>/src check` then loads each with
 * diffusers and prints how far its outputs are from diffuse's (no fixture is written).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ROUND_TRIP_RUNS, roundTripInputs, writeRoundTripRun } from '../test/helpers/diffusersRoundtrip.js';
import { exportCheckpointToDiffusers } from '../src/interop/diffusers.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { Generator, noGrad, randn, tensor, type Tensor } from '../src/tensor/index.js';
import { loadModelFromCheckpoint } from '../src/train/index.js';
import type { UNet } from '../src/nn/unet.js';

function writeIo(path: string, model: UNet, x: Tensor, t: Float32Array, classes: Int32Array | null): void {
  const y = noGrad(() => model.forward(x, tensor(t, [t.length]), classes ? tensor(classes, [classes.length], { dtype: 'int32' }) : undefined));
  const io = new Map<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }>([
    ['x', { dtype: 'F32', shape: [...x.shape], data: x.data as Float32Array }],
    ['t', { dtype: 'F32', shape: [t.length], data: t }],
    ['out_diffuse', { dtype: 'F32', shape: [...y.shape], data: y.data as Float32Array }],
  ]);
  if (classes) io.set('class_labels', { dtype: 'I32', shape: [classes.length], data: classes });
  writeFileSync(path, serializeSafetensors(io));
}

const args = process.argv.slice(2);
if (args[0] === '--checkpoint') {
  const ROOT = join('runs', 'diffusers-check');
  rmSync(ROOT, { recursive: true, force: true });
  for (const dir of args.slice(1)) {
    const name = basename(resolve(dir)), out = join(ROOT, `${name}-diffusers`);
    exportCheckpointToDiffusers(dir, out);
    const { model } = loadModelFromCheckpoint(dir, 'ema');
    const c = model.config, n = 4;
    const x = randn([n, c.inChannels, c.imageSize, c.imageSize], new Generator(5));
    const classes = c.numClasses ? Int32Array.from({ length: n }, (_, i) => (i === n - 1 ? c.numClasses : (3 * i) % c.numClasses)) : null;
    writeIo(join(ROOT, `${name}-io.safetensors`), model.eval(), x, Float32Array.from([999, 500, 37, 0]), classes);
    console.log(`${out}: exported`);
  }
} else {
  const ROOT = join('runs', 'diffusers-roundtrip');
  rmSync(ROOT, { recursive: true, force: true });
  for (const r of ROUND_TRIP_RUNS) {
    const run = join(ROOT, r.name), out = join(ROOT, `${r.name}-diffusers`);
    const model = writeRoundTripRun(r, run);
    exportCheckpointToDiffusers(run, out);
    const { x, t, classes } = roundTripInputs(r);
    writeIo(join(ROOT, `${r.name}-io.safetensors`), model, x, t, classes);
    console.log(`${out}: exported`);
  }
}
