/**
 * diffusers folders on disk: a UNet2DModel folder (config.json + diffusion_pytorch_model.safetensors) and a
 * pipeline folder (model_index.json + unet/ + scheduler/), read into a UNet2DModel and a scheduler, and written
 * from a diffuse model.
 *
 * This sits above src/nn and src/diffusion (the model and the scheduler translation) and src/io (safetensors):
 * it is the file-format layer, as src/train/checkpoint.ts is for diffuse's own checkpoints, and applies the same
 * checks: file names are fixed and resolved inside the folder, sizes are bounded before reading, every config
 * value is range-checked before anything is allocated, weights must be finite, and every error is one line
 * naming the file and field.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/files.js';
import { readRegularFile } from '../io/confined.js';
import { UNet2DModel, parseUNet2DConfig, renameLegacyAttention, type UNet2DConfig } from '../nn/diffusersUNet.js';
import { type DiffusersScheduler, diffusersSamplerConfig, diffusersSchedule, parseDiffusersScheduler, parsePythonJson } from '../diffusion/diffusers.js';
import { runSampler } from '../diffusion/index.js';
import { Generator, Tensor, concat, noGrad, randn, tensor } from '../tensor/index.js';
import { loadModelFromCheckpoint } from '../train/index.js';
import { ddpmSchedulerConfigFor, unet2DConfigFor, unet2DStateFor } from './toDiffusers.js';

export const MODEL_INDEX = 'model_index.json';
export const UNET_CONFIG = 'config.json';
export const UNET_WEIGHTS = 'diffusion_pytorch_model.safetensors';
export const SCHEDULER_CONFIG = 'scheduler_config.json';

const MAX_JSON_BYTES = 1 << 20;
// A Buffer holds at most 4 GiB.
const MAX_WEIGHT_BYTES = 2 ** 32 - 1;

export class DiffusersFolderError extends Error {
  override name = 'DiffusersFolderError';
}

const fail = (msg: string): never => { throw new DiffusersFolderError(msg); };

/** `dir/name` for a fixed file name, refusing a path that resolves (through links) outside `dir`. */
function inside(dir: string, name: string): string {
  const path = join(dir, name);
  if (!existsSync(path)) return path;
  const real = realpathSync(path), base = realpathSync(dir);
  const rel = relative(base, real);
  if (rel.startsWith('..') || isAbsolute(rel)) fail(`${path}: resolves outside ${dir}`);
  return path;
}

/** A regular file of at most `max` bytes, checked through its open descriptor (the checkpoints' reader). */
function readBounded(path: string, max: number): Buffer {
  try {
    return readRegularFile(path, { maxBytes: max });
  } catch (e) {
    return fail(/ENOENT/.test((e as Error).message) ? `${path}: missing` : (e as Error).message);
  }
}

function readJson(path: string): unknown {
  const text = readBounded(path, MAX_JSON_BYTES).toString('utf8');
  try {
    return parsePythonJson(text, path);
  } catch (e) {
    return fail((e as Error).message);
  }
}

/** What a path holds, as far as diffusers is concerned. */
export function diffusersFolderKind(path: string): 'pipeline' | 'unet' | null {
  if (!existsSync(path) || !statSync(path).isDirectory()) return null;
  if (existsSync(join(path, MODEL_INDEX))) return 'pipeline';
  if (existsSync(join(path, UNET_CONFIG)) && existsSync(join(path, UNET_WEIGHTS))) return 'unet';
  return null;
}

/** Reads a UNet2DModel folder: the config checked, then the weights (finite, the model's names and shapes). */
export function loadDiffusersUNet(dir: string): UNet2DModel {
  const cfgPath = inside(dir, UNET_CONFIG);
  let config: UNet2DConfig;
  try {
    config = parseUNet2DConfig(readJson(cfgPath), cfgPath);
  } catch (e) {
    return fail((e as Error).message);
  }
  const wPath = inside(dir, UNET_WEIGHTS);
  if (!existsSync(wPath)) {
    const other = ['diffusion_pytorch_model.bin', 'diffusion_pytorch_model.safetensors.index.json'].find((f) => existsSync(join(dir, f)));
    fail(`${wPath}: missing${other ? ` (${other} is there: only single-file safetensors weights are read)` : ''}`);
  }
  const model = new UNet2DModel(config);
  const expected = new Map([...model.namedParameters()].map(([n, p]) => [n, p.size]));
  const bytes = readBounded(wPath, MAX_WEIGHT_BYTES);
  const parsed = parseSafetensors(bytes, { name: wPath });
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [rawName, t] of parsed.tensors) {
    const name = renameLegacyAttention(rawName);
    if (!(t.data instanceof Float32Array)) fail(`${wPath}: tensor ${rawName} is ${t.dtype}, expected floating point`);
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) fail(`${wPath}: tensor ${rawName} has a non-finite value at index ${i}`);
    if (!expected.has(name)) fail(`${wPath}: unexpected tensor ${rawName} for this config`);
    state.set(name, { shape: t.shape, data: d });
  }
  try {
    model.loadStateDict(state);
  } catch (e) {
    fail(`${wPath}: ${(e as Error).message}`);
  }
  return model.eval();
}

export interface DiffusersPipeline {
  className: string;
  unet: UNet2DModel;
  scheduler: DiffusersScheduler;
}

const PIPELINES = ['DDPMPipeline', 'DDIMPipeline'];

/** Reads a pipeline folder: model_index.json naming a UNet2DModel and one of the supported schedulers. */
export function loadDiffusersPipeline(dir: string): DiffusersPipeline {
  const idxPath = inside(dir, MODEL_INDEX);
  const idx = readJson(idxPath) as Record<string, unknown>;
  if (idx === null || typeof idx !== 'object' || Array.isArray(idx)) fail(`${idxPath}: expected a JSON object`);
  const cls = idx._class_name;
  if (typeof cls !== 'string' || !PIPELINES.includes(cls)) fail(`${idxPath}: _class_name = ${JSON.stringify(cls)} is not supported (supported: ${PIPELINES.join(', ')})`);
  for (const [k, v] of Object.entries(idx)) {
    if (k.startsWith('_')) continue;
    if (k !== 'unet' && k !== 'scheduler') fail(`${idxPath}: component ${k} is not supported (a ${cls} has unet and scheduler)`);
    if (!Array.isArray(v) || v.length !== 2 || v[0] !== 'diffusers') fail(`${idxPath}: ${k} = ${JSON.stringify(v)} must be ["diffusers", <class>]`);
  }
  const unetEntry = idx.unet as [string, string] | undefined, schedEntry = idx.scheduler as [string, string] | undefined;
  if (!unetEntry || unetEntry[1] !== 'UNet2DModel') fail(`${idxPath}: unet = ${JSON.stringify(unetEntry ?? null)} is not supported (only UNet2DModel)`);
  if (!schedEntry) fail(`${idxPath}: no scheduler`);
  const unetDir = inside(dir, 'unet'), schedDir = inside(dir, 'scheduler');
  const unet = loadDiffusersUNet(unetDir);
  const sPath = inside(schedDir, SCHEDULER_CONFIG);
  let scheduler: DiffusersScheduler;
  try {
    scheduler = parseDiffusersScheduler(readJson(sPath), sPath);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (scheduler.className !== schedEntry![1]) fail(`${idxPath}: scheduler = ${schedEntry![1]}, but ${sPath} holds a ${scheduler.className}`);
  return { className: cls as string, unet, scheduler };
}

// ---- writing

/** Writes a UNet2DModel folder (config.json + weights); `dir` is created. */
export function saveDiffusersUNet(dir: string, config: UNet2DConfig, state: Map<string, { shape: readonly number[]; data: Float32Array }>,
  version = '0.31.0'): void {
  mkdirSync(dir, { recursive: true });
  const cfg = { _class_name: 'UNet2DModel', _diffusers_version: version, ...config };
  writeFileAtomic(join(dir, UNET_CONFIG), new TextEncoder().encode(`${JSON.stringify(cfg, null, 2)}\n`));
  const tensors = new Map<string, SafetensorsInput>();
  for (const [k, v] of state) tensors.set(k, { dtype: 'F32', shape: [...v.shape], data: v.data });
  writeFileAtomic(join(dir, UNET_WEIGHTS), serializeSafetensors(tensors, { format: 'pt' }, { name: join(dir, UNET_WEIGHTS) }));
}

/** Writes a pipeline folder: model_index.json, unet/, scheduler/scheduler_config.json. */
export function saveDiffusersPipeline(dir: string, pipeline: string, unetConfig: UNet2DConfig,
  state: Map<string, { shape: readonly number[]; data: Float32Array }>, scheduler: Record<string, unknown>, version = '0.31.0'): void {
  const out = resolve(dir);
  if (existsSync(out) && lstatSync(out).isSymbolicLink()) fail(`${out}: is a symbolic link`);
  mkdirSync(join(out, 'scheduler'), { recursive: true });
  saveDiffusersUNet(join(out, 'unet'), unetConfig, state, version);
  const sched = { _diffusers_version: version, ...scheduler };
  writeFileAtomic(join(out, 'scheduler', SCHEDULER_CONFIG), new TextEncoder().encode(`${JSON.stringify(sched, null, 2)}\n`));
  const index = { _class_name: pipeline, _diffusers_version: version, scheduler: ['diffusers', scheduler._class_name], unet: ['diffusers', 'UNet2DModel'] };
  writeFileAtomic(join(out, MODEL_INDEX), new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`));
}

// ---- sampling a diffusers pipeline in diffuse

export interface DiffusersSampleOptions {
  count: number;
  /** Default: the pipeline's (DDPMPipeline 1000, DDIMPipeline 50). */
  steps?: number;
  seed: number;
  /** Class per sample, for models with class embeddings (required there: UNet2DModel has no null class). */
  classes?: number[];
  /** DDIM's η (DDIMPipeline's eta). */
  eta?: number;
  /** Image side when the UNet's config has no sample_size. */
  imageSize?: number;
  batchSize?: number;
  onStep?: (step: number, total: number) => void;
}

/** The default steps of a pipeline class's __call__. */
export function pipelineDefaultSteps(className: string): number {
  return className === 'DDIMPipeline' ? 50 : 1000;
}

/**
 * Samples a pipeline as diffusers does: x_T ~ N(0, I) (diffuse's generator), then the scheduler's steps with its
 * timesteps, σ's and conventions (see src/diffusion/diffusers.ts). Returns the samples, [count, C, H, W].
 */
export function sampleDiffusersPipeline(p: DiffusersPipeline, o: DiffusersSampleOptions): Tensor {
  const unet = p.unet, c = unet.config, sched = p.scheduler;
  const size = c.sample_size ?? o.imageSize ?? fail('the UNet config has no sample_size: give the image size');
  const [h, w]: [number, number] = Array.isArray(size) ? size : [size, size];
  const schedule = diffusersSchedule(sched);
  const steps = o.steps ?? Math.min(pipelineDefaultSteps(p.className), schedule.T);
  const sampler = diffusersSamplerConfig(sched, steps, { eta: o.eta, schedule });
  const gen = new Generator(o.seed), bs = o.batchSize ?? 100, parts: Tensor[] = [];
  const model = (x: Tensor, t: Tensor, cond?: Tensor) => unet.forward(x, t, cond);
  const nc = c.num_class_embeds;
  if (nc !== null && !o.classes) fail('the UNet has class embeddings: give a class per sample');
  noGrad(() => {
    for (let start = 0; start < o.count; start += bs) {
      const n = Math.min(bs, o.count - start);
      const noise = randn([n, c.in_channels, h, w], gen);
      const cond = nc !== null ? tensor(Int32Array.from(o.classes!.slice(start, start + n)), [n], { dtype: 'int32' }) : undefined;
      const run = runSampler(sampler, model, schedule, noise, {
        prediction: sched.prediction, clip: sched.clip, learnedVariance: sched.learnedVariance, cond, gen,
      });
      for (;;) {
        const r = run.next();
        if (r.done) { parts.push(r.value); break; }
        o.onStep?.(r.value.step, r.value.totalSteps);
      }
    }
  });
  return parts.length === 1 ? parts[0] : concat(parts, 0);
}

// ---- exporting a diffuse checkpoint

/**
 * Writes a diffuse training run as a diffusers DDPMPipeline folder (model_index.json, unet/, scheduler/) into
 * `out`, which must not exist or be empty. The model must be expressible as a UNet2DModel (see toDiffusers.ts).
 */
export function exportCheckpointToDiffusers(checkpoint: string, out: string, weights: 'ema' | 'model' = 'ema'): { unet: UNet2DConfig; scheduler: Record<string, unknown> } {
  const { model, config } = loadModelFromCheckpoint(checkpoint, weights);
  const unetConfig = unet2DConfigFor(model.config);
  const scheduler = ddpmSchedulerConfigFor(config.schedule, config.objective.prediction, config.objective.variance);
  const dir = resolve(out);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) fail(`${dir}: exists and is not an empty folder (nothing is overwritten)`);
  saveDiffusersPipeline(dir, 'DDPMPipeline', unetConfig, unet2DStateFor(model), scheduler);
  return { unet: unetConfig, scheduler };
}
