/**
 * Exports of a diffuse run to other engines, by format. `diffuse export --format <name>` dispatches on this
 * table.
 */
import { exportPytorch } from './pytorch.js';
import { exportDiffusersFormat, exportOnnxFormat } from '../interop/exportFormats.js';

export { ExportError, exportPytorch } from './pytorch.js';

export interface ExportFormat {
  description: string;
  /** Writes the export of `checkpoint` into `out`; returns the paths written. */
  run(o: { checkpoint: string; out: string; data?: boolean; weights?: 'ema' | 'model' }): string[];
}

export const EXPORT_FORMATS: Record<string, ExportFormat> = {
  pytorch: {
    description: 'a PyTorch project: UNet, schedule, objective, AdamW, EMA, data; train.py runs under torchrun (DDP) and writes diffuse checkpoints',
    run: exportPytorch,
  },
  diffusers: {
    description: "a diffusers DDPMPipeline folder (UNet2DModel + DDPMScheduler) that diffusers' from_pretrained loads",
    run: exportDiffusersFormat,
  },
  onnx: {
    description: 'the UNet forward graph as an ONNX file (opset 17, dynamic batch); --checkpoint may also be a diffusers folder',
    run: exportOnnxFormat,
  },
};
