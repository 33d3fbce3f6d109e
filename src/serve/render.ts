/**
 * One sampling request run on a loaded model, to PNG bytes: the same calls, batches and image layout as
 * `diffuse sample --single` (grid: ⌈√count⌉ per row, ×2; each sample alone, ×2), so the bytes are equal.
 */
import type { NoiseSchedule } from '../diffusion/index.js';
import { encodePng, imageGrid } from '../io/png.js';
import type { UNet } from '../nn/unet.js';
import { narrow } from '../tensor/index.js';
import { sampleImages, sampledClasses, type ClusterRecord, type ObjectiveConfig } from '../train/index.js';
import { samplerConfig, type SampleRequest } from './request.js';

export interface RenderedSamples {
  grid: Uint8Array;
  images: Uint8Array[];
}

export interface LoadedModel {
  model: UNet;
  schedule: NoiseSchedule;
  objective: ObjectiveConfig;
  /** A cluster-conditioned model's record: requests without a class draw clusters by size. */
  clusters?: ClusterRecord;
}

/** Samples a request; `onStep(done, total)` counts sampler steps over all batches. */
export async function renderSamples(m: LoadedModel, r: SampleRequest, onStep?: (done: number, total: number) => void): Promise<RenderedSamples> {
  const nc = m.model.config.numClasses;
  const batches = Math.ceil(r.count / 100);
  let done = 0;
  const images = await sampleImages(m.model, m.schedule, m.objective, {
    count: r.count, sampler: samplerConfig(r.sampler, r.steps), seed: r.seed,
    ...sampledClasses(nc, m.clusters, r.count, { cls: r.class ?? undefined, unconditional: r.unconditional }),
    guidanceScale: nc > 0 ? r.guidance : undefined,
    onStep: (_step, steps) => onStep?.(++done, steps * batches),
  });
  const grid = encodePng(imageGrid(images, { nrow: Math.ceil(Math.sqrt(r.count)), scale: 2 }));
  const singles = Array.from({ length: r.count }, (_, i) => encodePng(imageGrid(narrow(images, 0, i, 1), { padding: 0, scale: 2 })));
  return { grid, images: singles };
}
