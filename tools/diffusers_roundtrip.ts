/**
 * Step 1 of the diffusers round trip: writes the diffuse runs of test/helpers/diffusersRoundtrip.ts, exports each as
 * a diffusers pipeline folder and writes the inputs, under runs/diffusers-roundtrip/. Step 2 is
 * `/usr/bin/python3 tools/gen_diffusers_fixtures.py <diffusers>/src roundtrip`, which loads each folder with
 * diffusers' own DDPMPipeline.from_pretrained and records its outputs in test/fixtures/diffusers/roundtrip-*.
 *
 *   npx tsx tools/diffusers_roundtrip.ts
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROUND_TRIP_RUNS, roundTripInputs, writeRoundTripRun } from '../test/helpers/diffusersRoundtrip.js';
import { exportCheckpointToDiffusers } from '../src/interop/diffusers.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { noGrad, tensor } from '../src/tensor/index.js';

const ROOT = join('runs', 'diffusers-roundtrip');
rmSync(ROOT, { recursive: true, force: true });
for (const r of ROUND_TRIP_RUNS) {
  const run = join(ROOT, r.name), out = join(ROOT, `${r.name}-diffusers`);
  const model = writeRoundTripRun(r, run);
  exportCheckpointToDiffusers(run, out);
  const { x, t, classes } = roundTripInputs(r);
  const y = noGrad(() => model.forward(x, tensor(t, [t.length]), classes ? tensor(classes, [classes.length], { dtype: 'int32' }) : undefined));
  const io = new Map<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }>([
    ['x', { dtype: 'F32', shape: [...x.shape], data: x.data as Float32Array }],
    ['t', { dtype: 'F32', shape: [t.length], data: t }],
    ['out_diffuse', { dtype: 'F32', shape: [...y.shape], data: y.data as Float32Array }],
  ]);
  if (classes) io.set('class_labels', { dtype: 'I32', shape: [classes.length], data: classes });
  writeFileSync(join(ROOT, `${r.name}-io.safetensors`), serializeSafetensors(io));
  console.log(`${out}: exported`);
}
