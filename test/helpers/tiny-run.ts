// A tiny trained run for tests that need a real checkpoint (service, export): an 8-channel, 2-level
// class-conditional UNet trained a few steps with the library's Trainer, on the first 64 MNIST digits
// (28×28), or on 64 random 8×8 images when only sampling speed matters.
import { mkdirSync } from 'node:fs';
import { Generator } from '../../src/index.js';
import { loadMnist, type ImageDataset } from '../../src/data/index.js';
import { normalizeScheduleConfig } from '../../src/diffusion/index.js';
import { unetConfigFromJSON } from '../../src/nn/unet.js';
import { Trainer, type RunConfig } from '../../src/train/index.js';

export interface TinyRunOptions {
  steps?: number;
  /** 28: MNIST digits; 8: random images (fast sampling). */
  size?: 28 | 8;
}

export function tinyRunConfig({ steps = 2, size = 28 }: TinyRunOptions = {}): RunConfig {
  return {
    dataset: size === 28 ? 'mnist' : 'random-8x8',
    datasetLimit: 64,
    model: {
      kind: 'unet',
      config: unetConfigFromJSON({
        imageSize: size, inChannels: 1, modelChannels: 8, channelMult: [1, 2], numResBlocks: 1, attentionLevels: [],
        numHeads: 1, numClasses: 10, midAttention: true,
      }),
    },
    schedule: normalizeScheduleConfig({ kind: 'linear', T: 1000 }),
    objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
    trainer: {
      steps, batchSize: 8, accumulate: 1, lr: 2e-3, minLr: 1e-4, warmupSteps: 1, weightDecay: 0, gradClip: 1,
      emaDecay: 0.999, condDropout: 0.1, seed: 0, sampleEvery: 0, checkpointEvery: 0,
      previewSampler: { kind: 'ddim', steps: 2 }, previewCount: 4,
    },
  };
}

function randomImages(n: number, size: number): ImageDataset {
  const gen = new Generator(5), images = new Float32Array(n * size * size);
  for (let i = 0; i < images.length; i++) images[i] = gen.uniform() * 2 - 1;
  return {
    name: 'random-8x8', images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, channels: 1, height: size, width: size,
    numClasses: 10, classNames: Array.from({ length: 10 }, (_, i) => String(i)), flipSafe: false,
  };
}

/** Trains the tiny run into `dir` (created) and returns its config. */
export async function makeTinyRun(dir: string, opts: TinyRunOptions = {}): Promise<RunConfig> {
  mkdirSync(dir, { recursive: true });
  const config = tinyRunConfig(opts);
  const data = opts.size === 8 ? randomImages(64, 8) : loadMnist({ split: 'train', limit: config.datasetLimit });
  await new Trainer(config, data).train({ outDir: dir });
  return config;
}
