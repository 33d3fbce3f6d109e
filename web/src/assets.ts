/**
 * The explorer's data files and how they load: JSON descriptions plus safetensors weights, written by
 * tools/export_web_model.ts (the MNIST UNet and the test digits) and tools/train_toy_model.ts (the 2-D toy
 * model). Loading takes bytes, not paths or URLs, so the same code runs in the browser (after fetch) and in
 * Node tests (after readFile). Only the public API of diffuse is used.
 */
import {
  MLPDenoiser, UNet, makeSchedule, mlpConfig, parseSafetensors, unetConfigFromJSON,
  type MLPConfig, type NoiseSchedule, type PredictionType, type ScheduleConfig, type UNetConfig,
} from '../../src/index.js';

export const WEB_MODEL_FORMAT = 'diffuse-web-model';

/** Where a shipped file came from, so the docs' commands can be checked against it. */
export interface WebModelSource {
  /** The run folder or command it was made from. */
  from: string;
  step?: number;
  weights?: 'ema' | 'model';
  /** SHA-256 of the source weight file (as checkpoint.json records it). */
  sha256?: string;
}

export interface WebModelJson {
  format: typeof WEB_MODEL_FORMAT;
  version: 1;
  model: { kind: 'unet'; config: UNetConfig } | { kind: 'mlp'; config: MLPConfig };
  schedule: ScheduleConfig;
  prediction: PredictionType;
  /** Class names of a conditional model (index numClasses is the null class). */
  classNames?: string[];
  /** The toy data set a 2-D model learned. */
  dataset?: string;
  /** The weights file, next to this JSON. */
  weights: { file: string; dtype: 'F16' | 'F32'; bytes: number };
  /** Largest |w − f16(w)| over all weights (0 for F32). */
  maxRoundingError: number;
  source: WebModelSource;
  /**
   * A distilled student (progressive distillation, `diffuse distill`): it samples with DDIM in `steps` steps
   * (trailing spacing) and has classifier-free guidance `guidance` folded in, so it is run without guidance.
   */
  distilled?: { steps: number; guidance: number };
}

/** One of the MNIST models the reverse panel offers (web/public/data/<name>.json and its weights). */
export interface MnistModelEntry {
  name: string;
  /** Set for a distilled student: its DDIM steps (the description's distilled.steps must agree). */
  steps?: number;
}

/**
 * The MNIST models shipped in web/public/data, the full UNet first (the page loads it at once; the others
 * when first chosen). Shipping another student (e.g. the 2-step one) is one entry here plus its two files.
 */
export const MNIST_MODELS: readonly MnistModelEntry[] = [
  { name: 'mnist-unet' },
  { name: 'mnist-unet-fast4', steps: 4 },
  { name: 'mnist-unet-fast1', steps: 1 },
];

/** The reverse panel's label of a model. */
export function mnistModelLabel(e: MnistModelEntry): string {
  return e.steps === undefined ? 'full UNet (any sampler)' : `distilled: ${e.steps} step${e.steps === 1 ? '' : 's'}`;
}

export interface LoadedModel<M> {
  model: M;
  schedule: NoiseSchedule;
  json: WebModelJson;
}

function check(json: unknown, name: string): WebModelJson {
  const j = json as WebModelJson;
  if (j?.format !== WEB_MODEL_FORMAT) throw new Error(`${name}: not a ${WEB_MODEL_FORMAT} description`);
  if (j.version !== 1) throw new Error(`${name}: version ${String(j.version)} is not supported (expected 1)`);
  if (j.distilled !== undefined) checkDistilled(j, name);
  return j;
}

/** A distilled record must name a whole step count and a finite guidance scale, nothing else (loadWebUNet checks
 *  the steps against the schedule). */
function checkDistilled(j: WebModelJson, name: string): void {
  const d = j.distilled as unknown as Record<string, unknown>;
  if (d === null || typeof d !== 'object' || Array.isArray(d)) throw new Error(`${name}: field distilled must be an object { steps, guidance }`);
  const extra = Object.keys(d).filter((k) => k !== 'steps' && k !== 'guidance');
  if (extra.length) throw new Error(`${name}: field distilled has unknown field ${extra[0]}`);
  if (typeof d.steps !== 'number' || !Number.isInteger(d.steps) || d.steps < 1) {
    throw new Error(`${name}: field distilled.steps must be a whole number, at least 1, got ${JSON.stringify(d.steps)?.slice(0, 40)}`);
  }
  if (typeof d.guidance !== 'number' || !Number.isFinite(d.guidance) || d.guidance < 0 || d.guidance > 100) {
    throw new Error(`${name}: field distilled.guidance must be a number from 0 to 100, got ${JSON.stringify(d.guidance)?.slice(0, 40)}`);
  }
}

function stateDict(bytes: Uint8Array, name: string) {
  const { tensors } = parseSafetensors(bytes, { name });
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${name}: tensor ${k} is ${t.dtype}, expected floating point`);
    out.set(k, { shape: t.shape, data: t.data });
  }
  return out;
}

/** The UNet a description and its weight bytes give, in eval mode. */
export function loadWebUNet(json: unknown, weights: Uint8Array, name = 'model'): LoadedModel<UNet> {
  const j = check(json, name);
  if (j.model.kind !== 'unet') throw new Error(`${name}: model kind '${j.model.kind}', expected 'unet'`);
  const schedule = makeSchedule(j.schedule);
  if (j.distilled && j.distilled.steps > schedule.T) {
    throw new Error(`${name}: field distilled.steps is ${j.distilled.steps}, more than the schedule's ${schedule.T} timesteps`);
  }
  const model = new UNet(unetConfigFromJSON(j.model.config));
  model.loadStateDict(stateDict(weights, j.weights.file));
  model.eval();
  return { model, schedule, json: j };
}

/**
 * A model of the MNIST list, loaded, must be what its entry says (a student distilled to its steps, or not
 * distilled) and take the full UNet's images and classes, which the panel's class menu and pictures are made for.
 */
export function checkMnistModel(entry: MnistModelEntry, m: LoadedModel<UNet>, full: LoadedModel<UNet>): void {
  const name = `${entry.name}.json`, d = m.json.distilled;
  if (entry.steps === undefined && d) throw new Error(`${name}: a distilled student (${d.steps} steps), listed as a full model`);
  if (entry.steps !== undefined && d?.steps !== entry.steps) {
    throw new Error(`${name}: expected a student distilled to ${entry.steps} steps, found ${d ? `${d.steps} steps` : 'no distilled record'}`);
  }
  const a = m.model.config, b = full.model.config;
  if (a.imageSize !== b.imageSize || a.inChannels !== b.inChannels || a.numClasses !== b.numClasses) {
    throw new Error(`${name}: ${a.inChannels}×${a.imageSize}×${a.imageSize} images and ${a.numClasses} classes, but the full UNet has ` +
      `${b.inChannels}×${b.imageSize}×${b.imageSize} and ${b.numClasses}`);
  }
}

/** The MLP denoiser of a 2-D toy model, in eval mode. */
export function loadWebMLP(json: unknown, weights: Uint8Array, name = 'model'): LoadedModel<MLPDenoiser> {
  const j = check(json, name);
  if (j.model.kind !== 'mlp') throw new Error(`${name}: model kind '${j.model.kind}', expected 'mlp'`);
  const model = new MLPDenoiser(mlpConfig(j.model.config));
  model.loadStateDict(stateDict(weights, j.weights.file));
  model.eval();
  return { model, schedule: makeSchedule(j.schedule), json: j };
}

/** A batch of 8-bit digits with labels (the MNIST test split, outside the training images). */
export interface Digits {
  n: number;
  height: number;
  width: number;
  /** n·height·width bytes, 0 = black. */
  pixels: Uint8Array;
  labels: Uint8Array;
  metadata: Record<string, string>;
}

export function loadDigits(bytes: Uint8Array, name = 'digits'): Digits {
  const { tensors, metadata } = parseSafetensors(bytes, { name });
  const images = tensors.get('images'), labels = tensors.get('labels');
  if (!images || images.dtype !== 'U8' || images.shape.length !== 3) throw new Error(`${name}: expected U8 'images' [N, H, W]`);
  if (!labels || labels.dtype !== 'U8' || labels.shape[0] !== images.shape[0]) throw new Error(`${name}: expected U8 'labels' [N]`);
  const [n, height, width] = images.shape;
  return { n, height, width, pixels: images.data as Uint8Array, labels: labels.data as Uint8Array, metadata };
}
