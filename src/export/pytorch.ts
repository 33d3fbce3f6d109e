/**
 * `diffuse export --format pytorch`: a self-contained PyTorch project that continues a run on PyTorch's
 * distributed engine (DDP under torchrun: NCCL on GPUs, gloo on CPUs) and writes diffuse checkpoints.
 *
 *   train.py           the training loop (and a --check mode: one step's loss and all-reduced gradients)
 *   unet_torch.py      the UNet with diffuse's parameter names (bench/unet_torch.py, checked against ours)
 *   diffusion.py       schedule, objective, warmup-cosine learning rate, EMA (AdamW is torch's own)
 *   checkpoint.py      diffuse's checkpoint format and safetensors, by hand
 *   data.py            data.safetensors: the run's dataset as diffuse decoded it (uint8), and batching
 *   init/              the checkpoint exported (weights, AdamW moments, EMA, step)
 *   README.md
 *
 * The Python files are real files in src/export/pytorch/, copied as they are.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTrainingSet, toUint8 } from '../data/index.js';
import { serializeSafetensors } from '../io/safetensors.js';
import { CHECKPOINT_JSON, checkpointDir, loadCheckpointGroup, readCheckpointJson, type CheckpointJson, type RunConfig } from '../train/index.js';

export class ExportError extends Error {
  override name = 'ExportError';
}

const TEMPLATE = fileURLToPath(new URL('./pytorch/', import.meta.url));
// The checked UNet is bench/unet_torch.py; the build copies it beside the templates (dist/export/pytorch/).
const UNET_BUILT = fileURLToPath(new URL('./pytorch/unet_torch.py', import.meta.url));
const UNET = existsSync(UNET_BUILT) ? UNET_BUILT : fileURLToPath(new URL('../../bench/unet_torch.py', import.meta.url));
const FILES = ['train.py', 'diffusion.py', 'checkpoint.py', 'data.py', 'README.md'];

export interface ExportOptions {
  checkpoint: string;
  out: string;
  /** Write data.safetensors (default true). */
  data?: boolean;
}

/** Writes the project; returns the paths written. */
export function exportPytorch(o: ExportOptions): string[] {
  const dir = checkpointDir(o.checkpoint);
  const json = readCheckpointJson<RunConfig>(dir);
  const config = json.config;
  if (config.objective.variance === 'learnedRange') {
    throw new ExportError(`${join(dir, CHECKPOINT_JSON)}: objective: the hybrid loss (learned variance) is not in the PyTorch project yet`);
  }
  for (const role of ['model', 'ema', 'optimizer']) loadCheckpointGroup(dir, json as CheckpointJson, role); // size and checksum
  if (existsSync(o.out) && readdirSync(o.out).length > 0) throw new ExportError(`--out ${o.out} is not empty`);
  mkdirSync(join(o.out, 'init'), { recursive: true });
  const written: string[] = [];
  for (const f of FILES) {
    copyFileSync(join(TEMPLATE, f), join(o.out, f));
    written.push(join(o.out, f));
  }
  copyFileSync(UNET, join(o.out, 'unet_torch.py'));
  written.push(join(o.out, 'unet_torch.py'));
  for (const f of [CHECKPOINT_JSON, ...Object.values(json.files).map((r) => r.file)]) {
    copyFileSync(join(dir, f), join(o.out, 'init', f));
    written.push(join(o.out, 'init', f));
  }
  if (o.data !== false) {
    const ds = loadTrainingSet(config.dataset, { limit: config.datasetLimit, size: config.model.config.imageSize });
    const bytes = ds.bytes ?? Uint8Array.from(ds.images, toUint8);
    const file = join(o.out, 'data.safetensors');
    writeFileSync(file, serializeSafetensors({
      images: { dtype: 'U8', shape: [ds.n, ds.channels, ds.height, ds.width], data: bytes },
      labels: { dtype: 'I32', shape: [ds.n], data: ds.labels },
    }, { name: ds.name, numClasses: String(ds.numClasses), flipSafe: String(ds.flipSafe), classNames: JSON.stringify(ds.classNames) }));
    written.push(file);
  }
  return written;
}
