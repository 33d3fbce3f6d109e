/**
 * Checks a run config (checkpoint.json's `config`) and a trainer state (its `state`) field by field before
 * anything is built from them: a checkpoint may come from anywhere. Every rejection is one line naming the
 * field; every size that drives an allocation has an upper bound (LIMITS here, UNET_LIMITS for the model,
 * MAX_TIMESTEPS for the schedule).
 */
import { normalizeSamplerConfig, normalizeScheduleConfig, SAMPLER_KINDS } from '../diffusion/index.js';
import { unetConfigFromJSON } from '../nn/unet.js';
import type { ClusterRecord, RunConfig, TrainerConfig, TrainerState } from './trainer.js';
import type { DistilledRecord } from './distill.js';

/** Bounds on the trainer's sizes, shared by the CLI's options. */
export const TRAIN_LIMITS = {
  batchSize: 4096,
  accumulate: 1024,
  previewCount: 1024,
  steps: 1e9,
  samplerSteps: 10_000,
} as const;

export class RunConfigError extends Error {
  override name = 'RunConfigError';
}

type Obj = Record<string, unknown>;

function objectAt(v: unknown, field: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new RunConfigError(`field ${field} must be an object, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v as Obj;
}

function intAt(v: unknown, field: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
    throw new RunConfigError(`field ${field} must be an integer in ${lo}…${hi}, got ${JSON.stringify(v)?.slice(0, 60)}`);
  }
  return v;
}

function numAt(v: unknown, field: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw new RunConfigError(`field ${field} must be a number in [${lo}, ${hi}], got ${JSON.stringify(v)?.slice(0, 60)}`);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, field: string, options: readonly T[]): T {
  if (!options.includes(v as T)) throw new RunConfigError(`field ${field} must be one of ${options.join(', ')}, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v as T;
}

function noExtra(o: Obj, field: string, known: readonly string[]): void {
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length) throw new RunConfigError(`field ${field} has unknown field(s) ${extra.slice(0, 5).join(', ')}`);
}

/** Wraps a validator that throws plain Errors so its message names the field. */
function at<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RunConfigError) throw e;
    throw new RunConfigError(`field ${field}: ${(e as Error).message.split('\n')[0]}`);
  }
}

const TRAINER_FIELDS = ['steps', 'batchSize', 'accumulate', 'lr', 'minLr', 'warmupSteps', 'weightDecay', 'gradClip', 'emaDecay',
  'condDropout', 'seed', 'sampleEvery', 'checkpointEvery', 'previewSampler', 'previewCount'] as const;

function trainerConfig(raw: unknown): TrainerConfig {
  const t = objectAt(raw, 'config.trainer');
  noExtra(t, 'config.trainer', TRAINER_FIELDS);
  const f = (k: string) => `config.trainer.${k}`;
  const steps = intAt(t.steps, f('steps'), 1, TRAIN_LIMITS.steps);
  const sampler = objectAt(t.previewSampler, f('previewSampler'));
  oneOf(sampler.kind, f('previewSampler.kind'), SAMPLER_KINDS);
  try {
    normalizeSamplerConfig(sampler, f('previewSampler'));
  } catch (e) {
    throw new RunConfigError(`field ${(e as Error).message}`);
  }
  if (sampler.steps !== undefined) intAt(sampler.steps, f('previewSampler.steps'), 1, TRAIN_LIMITS.samplerSteps);
  for (const [k, v] of Object.entries(sampler)) {
    if (!['number', 'string', 'boolean'].includes(typeof v) || (typeof v === 'number' && !Number.isFinite(v))) {
      throw new RunConfigError(`field ${f(`previewSampler.${k}`)} must be a finite number, a string or a boolean`);
    }
  }
  return {
    steps,
    batchSize: intAt(t.batchSize, f('batchSize'), 1, TRAIN_LIMITS.batchSize),
    accumulate: intAt(t.accumulate, f('accumulate'), 1, TRAIN_LIMITS.accumulate),
    lr: numAt(t.lr, f('lr'), 0, 1),
    minLr: numAt(t.minLr, f('minLr'), 0, 1),
    warmupSteps: intAt(t.warmupSteps, f('warmupSteps'), 0, steps),
    weightDecay: numAt(t.weightDecay, f('weightDecay'), 0, 1),
    gradClip: numAt(t.gradClip, f('gradClip'), 0, 1e6),
    emaDecay: numAt(t.emaDecay, f('emaDecay'), 0, 1),
    condDropout: numAt(t.condDropout, f('condDropout'), 0, 1),
    seed: intAt(t.seed, f('seed'), 0, Number.MAX_SAFE_INTEGER),
    sampleEvery: intAt(t.sampleEvery, f('sampleEvery'), 0, TRAIN_LIMITS.steps),
    checkpointEvery: intAt(t.checkpointEvery, f('checkpointEvery'), 0, TRAIN_LIMITS.steps),
    previewSampler: sampler as unknown as TrainerConfig['previewSampler'],
    previewCount: intAt(t.previewCount, f('previewCount'), 1, TRAIN_LIMITS.previewCount),
  };
}

/** A checked, normalised copy of a run config. */
export function validateRunConfig(raw: unknown): RunConfig {
  const c = objectAt(raw, 'config');
  noExtra(c, 'config', ['dataset', 'datasetLimit', 'model', 'schedule', 'objective', 'trainer', 'distilled', 'clusters']);
  if (typeof c.dataset !== 'string' || c.dataset.length === 0 || c.dataset.length > 4096 || c.dataset.includes('\0')) {
    throw new RunConfigError(`field config.dataset must be a dataset name or folder path, got ${JSON.stringify(c.dataset)?.slice(0, 60)}`);
  }
  const datasetLimit = c.datasetLimit === undefined || c.datasetLimit === null
    ? undefined : intAt(c.datasetLimit, 'config.datasetLimit', 1, 1e9);
  const m = objectAt(c.model, 'config.model');
  noExtra(m, 'config.model', ['kind', 'preset', 'config']);
  oneOf(m.kind, 'config.model.kind', ['unet'] as const);
  if (m.preset !== undefined && (typeof m.preset !== 'string' || m.preset.length > 64)) {
    throw new RunConfigError(`field config.model.preset must be a short name, got ${JSON.stringify(m.preset)?.slice(0, 60)}`);
  }
  const model = at('config.model.config', () => unetConfigFromJSON(objectAt(m.config, 'config.model.config')));
  const schedule = at('config.schedule', () => normalizeScheduleConfig(c.schedule));
  const o = objectAt(c.objective, 'config.objective');
  noExtra(o, 'config.objective', ['prediction', 'variance', 'weighting']);
  const w = objectAt(o.weighting, 'config.objective.weighting');
  const kind = oneOf(w.kind, 'config.objective.weighting.kind', ['none', 'minSnr'] as const);
  noExtra(w, 'config.objective.weighting', kind === 'minSnr' ? ['kind', 'gamma'] : ['kind']);
  const weighting = kind === 'minSnr'
    ? { kind, ...(w.gamma !== undefined ? { gamma: numAt(w.gamma, 'config.objective.weighting.gamma', 0, 1e6) } : {}) } as const
    : { kind } as const;
  const variance = oneOf(o.variance, 'config.objective.variance', ['fixedLarge', 'fixedSmall', 'learnedRange'] as const);
  if ((variance === 'learnedRange') !== model.learnSigma) {
    throw new RunConfigError(`field config.objective.variance is ${variance} but config.model.config.learnSigma is ${model.learnSigma}`);
  }
  const trainer = trainerConfig(c.trainer);
  return {
    dataset: c.dataset,
    ...(datasetLimit !== undefined ? { datasetLimit } : {}),
    model: { kind: 'unet', ...(m.preset !== undefined ? { preset: m.preset as string } : {}), config: model },
    schedule,
    objective: { prediction: oneOf(o.prediction, 'config.objective.prediction', ['epsilon', 'x0', 'v'] as const), variance, weighting },
    trainer,
    ...(c.distilled !== undefined ? { distilled: distilledRecord(c.distilled) } : {}),
    ...(c.clusters !== undefined ? { clusters: clusterRecord(c.clusters, model.numClasses, trainer.condDropout) } : {}),
  };
}

/** A cluster-conditioned model's record: `sizes.length` k-means clusters after `firstClass` labelled classes (src/data/clusters.ts). */
function clusterRecord(raw: unknown, numClasses: number, condDropout: number): ClusterRecord {
  const r = objectAt(raw, 'config.clusters');
  noExtra(r, 'config.clusters', ['sizes', 'guidance', 'seed', 'firstClass', 'share']);
  const firstClass = r.firstClass === undefined ? 0 : intAt(r.firstClass, 'config.clusters.firstClass', 1, Math.max(1, numClasses - 1));
  if (!Array.isArray(r.sizes) || r.sizes.length !== numClasses - firstClass || numClasses - firstClass === 0) {
    throw new RunConfigError(`field config.clusters.sizes must list one image count per cluster class of the model (${numClasses - firstClass}), ` +
      `got ${Array.isArray(r.sizes) ? `${r.sizes.length} entries` : JSON.stringify(r.sizes)?.slice(0, 60)}`);
  }
  const sizes = r.sizes.map((v, i) => intAt(v, `config.clusters.sizes[${i}]`, 0, 1e9));
  if (!sizes.some((v) => v > 0)) throw new RunConfigError('field config.clusters.sizes must have a cluster with images');
  const record: ClusterRecord = { sizes, guidance: numAt(r.guidance, 'config.clusters.guidance', 0, 100), seed: intAt(r.seed, 'config.clusters.seed', 0, Number.MAX_SAFE_INTEGER) };
  if (firstClass === 0) {
    if (r.share !== undefined) throw new RunConfigError('field config.clusters.share needs config.clusters.firstClass (labels to share the images with)');
    return record;
  }
  if (r.share === undefined) throw new RunConfigError('field config.clusters.share is required with config.clusters.firstClass');
  return { ...record, firstClass, share: numAt(r.share, 'config.clusters.share', 0, 1 - condDropout) };
}

/** A distilled student's record (src/train/distill.ts). */
function distilledRecord(raw: unknown): DistilledRecord {
  const d = objectAt(raw, 'config.distilled');
  noExtra(d, 'config.distilled', ['method', 'steps', 'teacherSteps', 'guidance', 'teacher']);
  const steps = intAt(d.steps, 'config.distilled.steps', 1, TRAIN_LIMITS.samplerSteps);
  if (d.teacherSteps !== 2 * steps) throw new RunConfigError(`field config.distilled.teacherSteps must be 2 × steps = ${2 * steps}, got ${JSON.stringify(d.teacherSteps)?.slice(0, 60)}`);
  if (typeof d.teacher !== 'string' || d.teacher.length > 4096 || d.teacher.includes('\0')) {
    throw new RunConfigError(`field config.distilled.teacher must be a folder path, got ${JSON.stringify(d.teacher)?.slice(0, 60)}`);
  }
  return {
    method: oneOf(d.method, 'config.distilled.method', ['progressive'] as const), steps, teacherSteps: 2 * steps,
    guidance: numAt(d.guidance, 'config.distilled.guidance', 0, 100), teacher: d.teacher,
  };
}

function generatorState(v: unknown, field: string): (number | null)[] {
  if (!Array.isArray(v) || v.length !== 5 || !v.slice(0, 4).every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)
    || !(v[4] === null || (typeof v[4] === 'number' && Number.isFinite(v[4])))) {
    throw new RunConfigError(`field ${field} must be a generator state (4 unsigned 32-bit words and a number or null)`);
  }
  return v as (number | null)[];
}

/** Checks the trainer state of a checkpoint that is to be resumed. */
export function validateTrainerState(raw: unknown, config: RunConfig): TrainerState {
  const s = objectAt(raw, 'state');
  intAt(s.step, 'state.step', 0, config.trainer.steps);
  numAt(s.elapsedSec, 'state.elapsedSec', 0, 1e12);
  generatorState(s.trainGen, 'state.trainGen');
  generatorState(s.dropoutGen, 'state.dropoutGen');
  const d = objectAt(s.data, 'state.data');
  intAt(d.epoch, 'state.data.epoch', 0, 1e12);
  intAt(d.cursor, 'state.data.cursor', 0, 1e12);
  intAt(d.n, 'state.data.n', 0, 1e12);
  intAt(d.batchSize, 'state.data.batchSize', 1, TRAIN_LIMITS.batchSize);
  generatorState(d.epochGenState, 'state.data.epochGenState');
  generatorState(d.genState, 'state.data.genState');
  intAt(s.emaUpdates, 'state.emaUpdates', 0, 1e12);
  const steps = objectAt(s.optimizerSteps, 'state.optimizerSteps');
  for (const [k, v] of Object.entries(steps)) intAt(v, `state.optimizerSteps.${k}`, 0, 1e12);
  const h = objectAt(s.optimizerHyper, 'state.optimizerHyper');
  numAt(h.lr, 'state.optimizerHyper.lr', 0, 1);
  numAt(h.beta1, 'state.optimizerHyper.beta1', 0, 1);
  numAt(h.beta2, 'state.optimizerHyper.beta2', 0, 1);
  numAt(h.eps, 'state.optimizerHyper.eps', 0, 1);
  numAt(h.weightDecay, 'state.optimizerHyper.weightDecay', 0, 1);
  if (s.lastLoss !== null && s.lastLoss !== undefined) numAt(s.lastLoss, 'state.lastLoss', -1e30, 1e30);
  return s as unknown as TrainerState;
}
