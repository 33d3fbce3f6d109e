/**
 * The diffusers and ONNX entries of `diffuse export`'s format table (src/export/index.ts): what the user asked
 * for but cannot be done is an ExportError (exit 2), with nothing written.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExportError } from '../export/pytorch.js';
import { availableBackends, getBackend, setBackend } from '../backends/index.js';
import { loadModelFromCheckpoint } from '../train/index.js';
import { diffusersFolderKind, exportCheckpointToDiffusers, loadDiffusersPipeline, loadDiffusersUNet } from './diffusers.js';
import { exportOnnx } from './onnx.js';
import { NotExpressibleError } from './toDiffusers.js';

type Options = { checkpoint: string; out: string; weights?: 'ema' | 'model' };

export function exportDiffusersFormat(o: Options): string[] {
  try {
    exportCheckpointToDiffusers(o.checkpoint, o.out, o.weights ?? 'ema');
  } catch (e) {
    if (e instanceof NotExpressibleError) throw new ExportError(`--format diffusers: ${e.message}`);
    throw e;
  }
  return ['model_index.json', 'unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'scheduler/scheduler_config.json'].map((f) => join(o.out, f));
}

export function exportOnnxFormat(o: Options): string[] {
  if (existsSync(o.out)) throw new ExportError(`--out ${o.out} exists (nothing is overwritten)`);
  // The exporter reads parameters from host memory.
  if (getBackend().device) setBackend(availableBackends().includes('native') ? 'native' : 'js');
  const kind = diffusersFolderKind(o.checkpoint);
  const model = kind === 'pipeline' ? loadDiffusersPipeline(o.checkpoint).unet : kind === 'unet' ? loadDiffusersUNet(o.checkpoint)
    : loadModelFromCheckpoint(o.checkpoint, o.weights ?? 'ema').model;
  writeFileSync(o.out, exportOnnx(model), { flag: 'wx' });
  return [o.out];
}
