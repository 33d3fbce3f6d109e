/**
 * `diffuse sample --checkpoint <diffusers folder>`: a pipeline folder (model_index.json + unet/ + scheduler/)
 * samples with its own scheduler, as diffusers samples it; a bare UNet2DModel folder samples with diffusers'
 * default DDPMScheduler (linear β over 1000 steps).
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { narrow, parseDiffusersScheduler, toHost } from '../index.js';
import {
  type DiffusersPipeline, diffusersFolderKind, loadDiffusersPipeline, loadDiffusersUNet, pipelineDefaultSteps, sampleDiffusersPipeline,
  saveImage, saveImageGrid,
} from '../node.js';

export interface DiffusersSampleFlags {
  checkpoint: string; steps?: number; count: number; seed: number; class?: number; guidance: number; out: string; single: boolean;
}

/** Whether `sample` should take this path. */
export const isDiffusersFolder = (path: string): boolean => diffusersFolderKind(path) !== null;

/** Bound on count × channels × H × W (as the sample command's own). */
const OUTPUT_VALUES = 2 ** 27;

export async function sampleDiffusersFolder(f: DiffusersSampleFlags, out: string, usage: (msg: string) => Error): Promise<void> {
  const p: DiffusersPipeline = diffusersFolderKind(f.checkpoint) === 'pipeline' ? loadDiffusersPipeline(f.checkpoint)
    : { className: 'DDPMPipeline', unet: loadDiffusersUNet(f.checkpoint), scheduler: parseDiffusersScheduler({ _class_name: 'DDPMScheduler' }) };
  const c = p.unet.config, nc = c.num_class_embeds;
  if (f.guidance !== 1) throw usage('--guidance: a diffusers UNet2DModel has no null class, so no classifier-free guidance');
  if (f.class !== undefined && (nc === null || f.class >= nc)) throw usage(`--class ${f.class}: the model ${nc === null ? 'is unconditional' : `has classes 0…${nc - 1}`}`);
  const size = c.sample_size;
  if (size === null) throw usage(`${f.checkpoint}: the UNet config has no sample_size`);
  const [h, w] = Array.isArray(size) ? size : [size, size];
  if (f.count * c.in_channels * h * w > OUTPUT_VALUES) throw usage(`--count ${f.count}: ${f.count} images of ${c.in_channels}×${h}×${w} are over the limit of ${OUTPUT_VALUES} values`);
  const T = p.scheduler.config.num_train_timesteps as number;
  if (f.steps !== undefined && f.steps > T) throw usage(`--steps ${f.steps}: the scheduler has ${T} training timesteps`);
  const classes = nc !== null ? Array.from({ length: f.count }, (_, i) => f.class ?? i % nc) : undefined;
  const steps = f.steps ?? Math.min(pipelineDefaultSteps(p.className), T);
  let last = 0;
  const images = sampleDiffusersPipeline(p, {
    count: f.count, steps, seed: f.seed, classes,
    onStep: (step, total) => {
      if (!process.stderr.isTTY && performance.now() - last < 10_000) return;
      last = performance.now();
      process.stderr.write(`sample step ${step}/${total}\n`);
    },
  });
  mkdirSync(out, { recursive: true });
  const grid = join(out, 'samples.png');
  saveImageGrid(grid, await toHost(images), { nrow: Math.ceil(Math.sqrt(f.count)), scale: 2 });
  if (f.single) {
    for (let i = 0; i < f.count; i++) saveImage(join(out, `sample-${String(i).padStart(4, '0')}.png`), await toHost(narrow(images, 0, i, 1)), { scale: 2 });
  }
  console.log(`${f.count} samples (${p.className} with ${p.scheduler.className}, ${steps} steps) → ${grid}`);
}
