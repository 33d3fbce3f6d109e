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
  return j;
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
  const model = new UNet(unetConfigFromJSON(j.model.config));
  model.loadStateDict(stateDict(weights, j.weights.file));
  model.eval();
  return { model, schedule: makeSchedule(j.schedule), json: j };
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
