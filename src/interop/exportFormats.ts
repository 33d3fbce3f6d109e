/**
 * The diffusers entry of `diffuse export`'s format table (src/export/index.ts): what the user asked
 * for but cannot be done is an ExportError (exit 2), with nothing written.
 */
import { join } from 'node:path';
import { ExportError } from '../export/pytorch.js';
import { exportCheckpointToDiffusers } from './diffusers.js';
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
