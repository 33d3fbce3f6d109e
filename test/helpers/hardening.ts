// Shared by the hardening suites: a tiny run folder to mutate, a spy on every file the process opens, and
// the checks every rejection must pass (one line, names the thing, no internals, nothing from outside).
import fs, { mkdirSync, realpathSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { isAbsolute, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Trainer, type RunConfig } from '../../src/train/index.js';
import { rng } from './compare.js';

/** A UNet of a few thousand parameters on 8×8 images, class-conditional: loads and samples in milliseconds. */
export const MICRO_RUN: RunConfig = {
  dataset: 'mnist',
  model: {
    kind: 'unet', preset: 'micro',
    config: {
      imageSize: 8, inChannels: 1, modelChannels: 8, channelMult: [1, 2], numResBlocks: 1, attentionLevels: [1], numHeads: 1,
      dropout: 0, numClasses: 2, learnSigma: false, downsample: 'conv', normGroups: 2, midAttention: true,
    },
  },
  schedule: { kind: 'linear', T: 100, betaStart: 1e-4, betaEnd: 0.02 },
  objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
  trainer: {
    steps: 4, batchSize: 4, accumulate: 1, lr: 1e-3, minLr: 1e-4, warmupSteps: 1, weightDecay: 0, gradClip: 1, emaDecay: 0.9,
    condDropout: 0.1, seed: 0, sampleEvery: 0, checkpointEvery: 0, previewSampler: { kind: 'ddim', steps: 4 }, previewCount: 4,
  },
};

/** Writes a checkpoint of MICRO_RUN after `steps` training steps on random images into `dir`. */
export async function writeMicroRun(dir: string, steps = 1): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const r = rng(5);
  const n = 8, images = Float32Array.from({ length: n * 64 }, () => r() * 2 - 1);
  const trainer = new Trainer(MICRO_RUN, {
    name: 'random', images, labels: Int32Array.from({ length: n }, (_, i) => i % 2), n, channels: 1, height: 8, width: 8,
    numClasses: 2, classNames: ['a', 'b'], flipSafe: false,
  });
  for (let i = 0; i < steps; i++) await trainer.trainStep();
  await trainer.saveCheckpoint(dir, 0);
}

/** Records every path this process opens or reads through node:fs (for "no read outside the folder"). */
export function spyOnReads(): { paths: string[]; restore(): void } {
  const paths: string[] = [];
  const originals = { openSync: fs.openSync, readFileSync: fs.readFileSync, createReadStream: fs.createReadStream };
  const record = (p: unknown) => { if (typeof p === 'string' || p instanceof URL || Buffer.isBuffer(p)) paths.push(String(p)); };
  fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => { record(p); return (originals.openSync as (...a: unknown[]) => number)(p, ...rest); }) as typeof fs.openSync;
  fs.readFileSync = ((p: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (typeof p !== 'number') record(p);
    return (originals.readFileSync as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof fs.readFileSync;
  fs.createReadStream = ((p: fs.PathLike, ...rest: unknown[]) => { record(p); return (originals.createReadStream as (...a: unknown[]) => fs.ReadStream)(p, ...rest); }) as typeof fs.createReadStream;
  syncBuiltinESMExports();
  return {
    paths,
    restore() {
      Object.assign(fs, originals);
      syncBuiltinESMExports();
    },
  };
}

/** Whether `path` resolves (through links) to somewhere inside `folder` (or is the folder). */
export function resolvesInside(folder: string, path: string): boolean {
  let real = resolve(path);
  try { real = realpathSync(real); } catch { /* does not exist: judge the path itself */ }
  const rel = relative(realpathSync(folder), real);
  return !rel.startsWith('..') && !isAbsolute(rel);
}

/** What a message from our code must never look like: a JavaScript internal leaking through. */
export const INTERNAL = /Cannot read propert|is not a function|is not iterable|Invalid typed array length|Invalid array length|Maximum call stack|undefined \(reading|\[object Object\]/;

/** Runs the CLI (through a preload that records the peak RSS) and returns its exit, output and peak memory. */
export function runCli(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): {
  code: number | null; signal: NodeJS.Signals | null; out: string; err: string; maxRssMiB: number; ms: number;
} {
  const rssFile = join(fs.mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'diffuse-rss-')), 'rss');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', './test/helpers/report-rss.mjs', 'bin/diffuse.mjs', ...args], {
    encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, ...opts.env, DIFFUSE_TEST_RSS_FILE: rssFile },
  });
  let maxRssMiB = NaN;
  try { maxRssMiB = Number(readFileSync(rssFile, 'utf8')) / 1024; } catch { /* killed before exit */ }
  rmSync(join(rssFile, '..'), { recursive: true, force: true });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr, maxRssMiB, ms: performance.now() - t0 };
}
