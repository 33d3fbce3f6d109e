/**
 * The diffuse runs exported for the diffusers round trip: built from fixed seeds (so the test rebuilds the very
 * weights diffusers loaded), written as diffuse checkpoints. Used by tools/diffusers_roundtrip.ts and
 * test/diffusers-export.test.ts.
 */
import { mkdirSync } from 'node:fs';
import { UNet, unetPreset, type UNetConfig } from '../../src/nn/unet.js';
import { saveCheckpoint, type RunConfig, type TensorGroup } from '../../src/train/index.js';
import { normalizeScheduleConfig, type ScheduleConfig } from '../../src/diffusion/index.js';
import { Generator, randn, type Tensor } from '../../src/tensor/index.js';

export interface RoundTripRun {
  name: string;
  model: Partial<UNetConfig>;
  schedule: ScheduleConfig;
  objective: RunConfig['objective'];
}

export const ROUND_TRIP_RUNS: RoundTripRun[] = [
  {
    // The tiny preset's layout at 16×16, class-conditional.
    name: 'tiny-groups8-classes',
    model: { imageSize: 16, inChannels: 1, numClasses: 10, normGroups: 8 },
    schedule: { kind: 'linear', T: 1000 },
    objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
  },
  {
    // `diffuse train`'s default model as it is: the tiny preset (8 groups in every norm), class-conditional MNIST.
    name: 'tiny-default-classes',
    model: { imageSize: 28, inChannels: 1, numClasses: 10 },
    schedule: { kind: 'linear', T: 1000 },
    objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
  },
  {
    name: 'small-v-learned-cosine',
    model: { imageSize: 8, inChannels: 3, modelChannels: 16, channelMult: [1, 2], numResBlocks: 1, attentionLevels: [1], numHeads: 2,
      normGroups: 4, learnSigma: true, midAttention: false },
    schedule: { kind: 'cosine', T: 1000 },
    objective: { prediction: 'v', variance: 'learnedRange', weighting: { kind: 'none' } },
  },
];

export function roundTripConfig(r: RoundTripRun): RunConfig {
  return {
    dataset: 'mnist',
    model: { kind: 'unet', preset: 'tiny', config: unetPreset('tiny', r.model) },
    schedule: normalizeScheduleConfig(r.schedule),
    objective: r.objective,
    trainer: {
      steps: 1, batchSize: 1, accumulate: 1, lr: 1e-3, minLr: 1e-4, warmupSteps: 0, weightDecay: 0, gradClip: 1, emaDecay: 0.999,
      condDropout: 0.1, seed: 7, sampleEvery: 0, checkpointEvery: 1, previewSampler: { kind: 'ddim', steps: 2 }, previewCount: 1,
    },
  };
}

/** Builds the run's model (seeded, no zero init: every path carries signal) and writes it as a diffuse checkpoint. */
export function writeRoundTripRun(r: RoundTripRun, dir: string): UNet {
  const config = roundTripConfig(r);
  const model = new UNet(config.model.config, { seed: 11, zeroInit: false });
  const group: TensorGroup = new Map([...model.stateDict()].map(([k, v]) => [k, { dtype: 'F32', shape: [...v.shape], data: v.data }]));
  mkdirSync(dir, { recursive: true });
  saveCheckpoint(dir, 1, config, { step: 1 }, { model: group, ema: group });
  return model.eval();
}

/** Inputs for the comparison: x, timesteps and (conditional models) class labels. */
export function roundTripInputs(r: RoundTripRun): { x: Tensor; t: Float32Array; classes: Int32Array | null } {
  const c = roundTripConfig(r).model.config;
  const x = randn([3, c.inChannels, c.imageSize, c.imageSize], new Generator(5));
  return { x, t: Float32Array.from([999, 421, 0]), classes: c.numClasses ? Int32Array.from([3, 9, c.numClasses]) : null };
}
