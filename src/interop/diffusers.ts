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
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/png.js';
import { UNet2DModel, parseUNet2DConfig, renameLegacyAttention, type UNet2DConfig } from '../nn/diffusersUNet.js';
import { type DiffusersScheduler, parseDiffusersScheduler, parsePythonJson } from '../diffusion/diffusers.js';

export const MODEL_INDEX = 'model_index.json';
export const UNET_CONFIG = 'config.json';
export const UNET_WEIGHTS = 'diffusion_pytorch_model.safetensors';
export const SCHEDULER_CONFIG = 'scheduler_config.json';

const MAX_JSON_BYTES = 1 << 20;
const MAX_WEIGHT_BYTES = 8 * 2 ** 30;

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

function readBounded(path: string, max: number): Buffer {
  if (!existsSync(path)) fail(`${path}: missing`);
  const st = statSync(path);
  if (!st.isFile()) fail(`${path}: not a file`);
  if (st.size > max) fail(`${path}: ${st.size} bytes, more than the ${max} allowed`);
  return readFileSync(path);
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
