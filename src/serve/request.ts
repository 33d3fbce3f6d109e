/**
 * The sampling request of the service: its schema, bounds and defaults. A request is checked field by field
 * against the model it will run on and the server's limits; the first problem becomes a one-line message
 * that names the field. Defaults are those of `diffuse sample`, so a request and the command with the same
 * values draw the same images.
 */
import { randomInt } from 'node:crypto';
import { SAMPLERS, SAMPLER_KINDS, normalizeSamplerConfig, type SamplerConfig, type SamplerKind } from '../diffusion/index.js';

/** A request after validation: every field filled. */
export interface SampleRequest {
  count: number;
  /** null: the labelled classes in turn (a model without labels: its clusters, or the null class), as `diffuse sample` without --class. */
  class: number | null;
  /** Without a class: clusters drawn by size where the model has them, else the null class (`sample --unconditional`). */
  unconditional: boolean;
  guidance: number;
  sampler: SamplerKind;
  /** null: the sampler's default (ddpm: every timestep of the schedule). */
  steps: number | null;
  seed: number;
}

/** What the server bounds. */
export interface RequestLimits {
  maxCount: number;
  maxSteps: number;
  maxGuidance: number;
}

export const DEFAULT_LIMITS: RequestLimits = { maxCount: 64, maxSteps: 200, maxGuidance: 20 };

/** What a request is checked against: the model's classes and the schedule's length. */
export interface ModelInfo {
  numClasses: number;
  T: number;
  /** The guidance of a request without one: 1, or a cluster-conditioned model's own (RunConfig.clusters). */
  defaultGuidance?: number;
  /** The guidance of an unconditional request without one: the clusters' own where the model has them, else 1. */
  unconditionalGuidance?: number;
}

export class RequestError extends Error {
  override name = 'RequestError';
}

/** The sampler config of `diffuse sample --sampler kind [--steps n]`: without steps, the registry's default. */
export function samplerConfig(kind: SamplerKind, steps: number | null): SamplerConfig {
  return normalizeSamplerConfig({ kind, ...(steps ? { steps } : {}) }, 'sampler');
}

/** The number of sampler steps a request runs (the sampler's registry default without steps). */
export function effectiveSteps(kind: SamplerKind, steps: number | null, T: number): number {
  return steps ?? SAMPLERS[kind].defaultSteps(T);
}

const FIELDS = ['count', 'class', 'unconditional', 'guidance', 'sampler', 'steps', 'seed'] as const;
const MAX_SEED = Number.MAX_SAFE_INTEGER;

const describe = (v: unknown): string => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 24 ? `${v.slice(0, 24)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
};

function integer(field: string, v: unknown, lo: number, hi: number, why = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new RequestError(`${field}: expected an integer, got ${describe(v)}`);
  if (v < lo || v > hi) throw new RequestError(`${field}: must be in ${lo}…${hi}${why}, got ${v}`);
  return v;
}

/**
 * Checks a parsed JSON body. Throws RequestError naming the field. `seed` defaults to a random one, which
 * the result reports, so any answer can be drawn again.
 */
export function parseSampleRequest(body: unknown, model: ModelInfo, limits: RequestLimits = DEFAULT_LIMITS): SampleRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new RequestError(`body: expected a JSON object, got ${describe(body)}`);
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknown.length) throw new RequestError(`${unknown[0]}: unknown field (fields: ${FIELDS.join(', ')})`);
  if (b.count === undefined) throw new RequestError('count: required');
  const count = integer('count', b.count, 1, limits.maxCount, ' (the server\'s limit)');
  let cls: number | null = null;
  if (b.class !== undefined && b.class !== null) {
    if (model.numClasses === 0) throw new RequestError('class: the model is unconditional');
    cls = integer('class', b.class, 0, model.numClasses - 1, ' (the model\'s classes)');
  }
  let unconditional = false;
  if (b.unconditional !== undefined && b.unconditional !== null) {
    if (typeof b.unconditional !== 'boolean') throw new RequestError(`unconditional: expected true or false, got ${describe(b.unconditional)}`);
    if (b.unconditional && cls !== null) throw new RequestError(`unconditional: the request names class ${cls}`);
    unconditional = b.unconditional;
  }
  let guidance = (unconditional ? model.unconditionalGuidance : model.defaultGuidance) ?? 1;
  if (b.guidance !== undefined) {
    if (typeof b.guidance !== 'number' || !Number.isFinite(b.guidance)) throw new RequestError(`guidance: expected a number, got ${describe(b.guidance)}`);
    if (b.guidance < 0 || b.guidance > limits.maxGuidance) throw new RequestError(`guidance: must be in [0, ${limits.maxGuidance}], got ${b.guidance}`);
    if (model.numClasses === 0 && b.guidance !== 1) throw new RequestError('guidance: the model is unconditional (classifier-free guidance needs classes)');
    guidance = b.guidance;
  }
  let sampler: SamplerKind = 'dpmSolverPlusPlus';
  if (b.sampler !== undefined) {
    if (typeof b.sampler !== 'string' || !SAMPLER_KINDS.includes(b.sampler as SamplerKind)) {
      throw new RequestError(`sampler: expected one of ${SAMPLER_KINDS.join(', ')}, got ${describe(b.sampler)}`);
    }
    sampler = b.sampler as SamplerKind;
  }
  let steps: number | null = null;
  if (b.steps !== undefined && b.steps !== null) steps = integer('steps', b.steps, 1, limits.maxSteps, ' (the server\'s limit)');
  const runs = effectiveSteps(sampler, steps, model.T);
  if (runs > limits.maxSteps) throw new RequestError(`steps: ${sampler} defaults to ${runs} steps, above the server's limit ${limits.maxSteps}; pass steps`);
  const seed = b.seed === undefined || b.seed === null ? randomInt(0, 2 ** 32) : integer('seed', b.seed, 0, MAX_SEED);
  return { count, class: cls, unconditional, guidance, sampler, steps, seed };
}

/** The `diffuse sample` arguments that draw the same images as a request. */
export function sampleArgs(r: SampleRequest): string[] {
  return [
    '--count', String(r.count), '--seed', String(r.seed), '--sampler', r.sampler, '--guidance', String(r.guidance),
    ...(r.steps !== null ? ['--steps', String(r.steps)] : []), ...(r.class !== null ? ['--class', String(r.class)] : []),
    ...(r.unconditional ? ['--unconditional'] : []),
  ];
}
