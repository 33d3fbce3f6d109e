/**
 * Trains the explorer's 2-D toy denoiser (the "score" view): an MLP noise predictor (src/nn/mlp.ts) on one of
 * the toy sets of src/data/toy2d.ts, with L_simple, AdamW (warmup + cosine) and an EMA of the weights, then
 * writes toy-<set>.json and toy-<set>.safetensors (the EMA weights in F16) next to the MNIST model.
 *
 *   npx tsx tools/train_toy_model.ts [--dataset swissroll] [--steps 3000] [--out web/public/data]
 *
 * About a minute of CPU on the native backend (DIFFUSE_BACKEND=js works too, slower). Seeded: the same
 * command writes the same weights on the same backend.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AdamW, EMA, Generator, floatToHalf, halfToFloat, MLPDenoiser, getBackend, isToy2dName, makeSchedule, mlpConfig, noGrad, sampleToy2d,
  serializeSafetensors, tensor, trainingLoss, warmupCosine, type Model, type ScheduleConfig,
} from '../src/index.js';
import { WEB_MODEL_FORMAT, type WebModelJson } from '../web/src/assets.js';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: 'swissroll' },
    steps: { type: 'string', default: '3000' },
    batch: { type: 'string', default: '256' },
    lr: { type: 'string', default: '0.002' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: 'web/public/data' },
  },
});
const name = args.dataset;
if (!isToy2dName(name)) throw new Error(`unknown toy set ${name}`);
const steps = Number(args.steps), batch = Number(args.batch), lr = Number(args.lr), seed = Number(args.seed);
for (const [k, v] of Object.entries({ steps, batch, seed })) {
  if (!Number.isInteger(v) || v < (k === 'seed' ? 0 : 1)) throw new Error(`--${k} must be a whole number${k === 'seed' ? '' : ' ≥ 1'}, got ${String(args[k as keyof typeof args])}`);
}
if (!(lr > 0)) throw new Error(`--lr must be positive, got ${args.lr}`);

const config = mlpConfig({ dataDim: 2, hidden: 128, numLayers: 3, timeEmbedDim: 32 });
const scheduleConfig: ScheduleConfig = { kind: 'cosine', T: 1000 };
const schedule = makeSchedule(scheduleConfig);
const net = new MLPDenoiser(config, { seed });
const model: Model = (x, t) => net.forward(x, t);
const opt = new AdamW(net, { lr, weightDecay: 0 });
const ema = new EMA(net, { decay: 0.995, warmup: true });
const lrAt = warmupCosine({ baseLr: lr, warmupSteps: Math.min(100, steps), totalSteps: steps, minLr: lr / 20 });
const gen = new Generator(seed + 1);

const started = performance.now();
let avg = 0;
for (let s = 0; s < steps; s++) {
  const x0 = tensor(sampleToy2d(name, batch, gen), [batch, 2]);
  const { loss } = trainingLoss(model, schedule, x0, { gen });
  opt.zeroGrad();
  loss.backward();
  opt.step(lrAt(s));
  ema.update();
  avg = s === 0 ? loss.item() : 0.99 * avg + 0.01 * loss.item();
  if ((s + 1) % 500 === 0) console.log(`step ${s + 1}/${steps}  loss (smoothed) ${avg.toFixed(4)}`);
}
const seconds = (performance.now() - started) / 1000;

// Held-out loss of the EMA weights at fixed noise, for the record.
ema.copyTo();
const evalGen = new Generator(12345);
const heldOut = noGrad(() => trainingLoss(model, schedule, tensor(sampleToy2d(name, 4096, evalGen), [4096, 2]), { gen: evalGen }).loss.item());

function maxRoundingError(ts: Map<string, { data: Float32Array }>): number {
  let m = 0;
  for (const { data } of ts.values()) for (const v of data) m = Math.max(m, Math.abs(halfToFloat(floatToHalf(v)) - v));
  return m;
}

const file = `toy-${name}.safetensors`;
const tensors = new Map([...net.stateDict()].map(([k, v]) => [k, { dtype: 'F16' as const, shape: [...v.shape], data: v.data }]));
const bytes = serializeSafetensors(tensors, { dataset: name, steps: String(steps) });
const desc: WebModelJson = {
  format: WEB_MODEL_FORMAT,
  version: 1,
  model: { kind: 'mlp', config },
  schedule: scheduleConfig,
  prediction: 'epsilon',
  dataset: name,
  weights: { file, dtype: 'F16', bytes: bytes.length },
  maxRoundingError: maxRoundingError(tensors),
  source: { from: `npx tsx tools/train_toy_model.ts --dataset ${name} --steps ${steps} --batch ${batch} --lr ${lr} --seed ${seed}` },
};
mkdirSync(args.out, { recursive: true });
writeFileSync(join(args.out, file), bytes);
writeFileSync(join(args.out, `toy-${name}.json`), `${JSON.stringify(desc, null, 1)}\n`);
console.log(`${join(args.out, file)}: ${bytes.length} bytes; ${steps} steps in ${seconds.toFixed(1)} s on ${getBackend().name}; ` +
  `held-out L_simple (EMA) ${heldOut.toFixed(4)}`);
