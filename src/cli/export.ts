/** `diffuse export`: a run in another engine's terms (formats: src/export/index.ts). */
import { Command, InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { EXPORT_FORMATS, ExportError } from '../node.js';

const format = (v: string): string => {
  if (!(v in EXPORT_FORMATS)) throw new InvalidArgumentError(`unknown format '${v}' (choose one of ${Object.keys(EXPORT_FORMATS).join(', ')})`);
  return v;
};

export function registerExportCommands(p: Command): void {
  p.command('export').description(`Export a run to another engine (${Object.keys(EXPORT_FORMATS).join(', ')}).`)
    .requiredOption('--checkpoint <path>', 'run folder (or its checkpoint.json)')
    .requiredOption('--format <name>', Object.entries(EXPORT_FORMATS).map(([k, f]) => `${k}: ${f.description}`).join('; '), format)
    .requiredOption('--out <path>', 'output folder (new or empty); for onnx a new file')
    .option('--no-data', 'leave out the training data (pytorch)')
    .option('--weights <which>', 'ema or model (diffusers, onnx)', 'ema')
    .action((o: { checkpoint: string; format: string; out: string; data: boolean; weights: string }, cmd: Command) => {
      let written: string[];
      try {
        if (o.weights !== 'ema' && o.weights !== 'model') throw new ExportError(`--weights must be ema or model, got '${o.weights}'`);
        written = EXPORT_FORMATS[o.format].run({ checkpoint: o.checkpoint, out: resolve(o.out), data: o.data, weights: o.weights });
      } catch (e) {
        // What the user asked for cannot be done (usage, exit 2); anything else is a runtime error (exit 1).
        if (e instanceof ExportError) cmd.error(`diffuse: ${e.message}`, { exitCode: 2 });
        throw e;
      }
      console.log(`diffuse export: ${o.format}, ${written.length} files → ${resolve(o.out)}`);
    });
}
