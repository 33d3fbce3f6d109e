/**
 * One entry point for every sampler: a JSON-able config picks the algorithm and its settings, the common
 * options (conditioning, clipping, inpainting, image-to-image) are shared.
 */
import type { Tensor } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { fail } from '../util.js';
import type { Model, SampleOptions, SamplerRun } from './common.js';
import { DEFAULT_STEPS } from './defaults.js';
import { type DdimOptions, ddim } from './ddim.js';
import { type DdpmOptions, ddpm } from './ddpm.js';
import { type DpmSolverOptions, dpmSolverPlusPlus } from './dpmSolverPlusPlus.js';
import { type KarrasSamplerOptions, euler, heun } from './karras.js';
import { type PredictorCorrectorOptions, predictorCorrector } from './predictorCorrector.js';

type Settings<O> = Omit<O, keyof SampleOptions>;

/** A sampler and its settings as JSON, e.g. `{ kind: 'dpmSolverPlusPlus', steps: 20 }`. */
export type SamplerConfig =
  | ({ kind: 'ddpm' } & Settings<DdpmOptions>)
  | ({ kind: 'ddim' } & Settings<DdimOptions>)
  | ({ kind: 'dpmSolverPlusPlus' } & Settings<DpmSolverOptions>)
  | ({ kind: 'euler' } & Settings<KarrasSamplerOptions>)
  | ({ kind: 'heun' } & Settings<KarrasSamplerOptions>)
  | ({ kind: 'predictorCorrector' } & Settings<PredictorCorrectorOptions>);

export type SamplerKind = SamplerConfig['kind'];

/** What the library, the CLI and the web app know about a sampler. */
export interface SamplerEntry {
  /** For menus and logs. */
  label: string;
  /** Steps when a config gives none, for a schedule of T steps. */
  defaultSteps: (T: number) => number;
  /** The settings its config may carry besides `kind`. */
  settings: readonly string[];
  run: (config: SamplerConfig, model: Model, schedule: NoiseSchedule, noise: Tensor, opts: SampleOptions) => SamplerRun;
}

/**
 * The settings of an options type, listed in full: a setting missing from the list (or not in the type) fails
 * to compile, so the registry cannot fall behind the samplers' options.
 */
const settingsOf = <O>() => <const L extends readonly (keyof Settings<O> & string)[]>(
  ...list: L & ([Exclude<keyof Settings<O>, L[number]>] extends [never] ? unknown : { missing: Exclude<keyof Settings<O>, L[number]> })
): readonly string[] => list;

const SIGMA = ['steps', 'sigmas', 'timesteps', 'initNoiseSigma', 'outputScale', 'spacing', 'sigmaMin', 'sigmaMax', 'rho'] as const;

/** The one sampler registry: kind → run function, default step count, label and accepted settings. */
export const SAMPLERS: { readonly [K in SamplerKind]: SamplerEntry } = {
  ddpm: {
    label: 'DDPM (ancestral)', defaultSteps: DEFAULT_STEPS.ddpm,
    settings: settingsOf<DdpmOptions>()('steps', 'spacing', 'variance', 'stepsOffset', 'timesteps', 'lastStepNoise', 'prevTimestep'),
    run: (c, m, s, n, o) => ddpm(m, s, n, { ...o, ...(c as Settings<DdpmOptions>) }),
  },
  ddim: {
    label: 'DDIM (η = 0)', defaultSteps: DEFAULT_STEPS.ddim,
    settings: settingsOf<DdimOptions>()('steps', 'eta', 'spacing', 'stepsOffset', 'timesteps', 'prevTimestep', 'finalAlphaCumprod', 'clipEps'),
    run: (c, m, s, n, o) => ddim(m, s, n, { ...o, ...(c as Settings<DdimOptions>) }),
  },
  dpmSolverPlusPlus: {
    label: 'DPM-Solver++ (2M)', defaultSteps: DEFAULT_STEPS.dpmSolverPlusPlus,
    settings: settingsOf<DpmSolverOptions>()(...SIGMA, 'order', 'solverType', 'lowerOrderFinal', 'sde', 'eta'),
    run: (c, m, s, n, o) => dpmSolverPlusPlus(m, s, n, { ...o, ...(c as Settings<DpmSolverOptions>) }),
  },
  euler: {
    label: 'Euler (Karras σ)', defaultSteps: DEFAULT_STEPS.euler,
    settings: settingsOf<KarrasSamplerOptions>()(...SIGMA, 'sChurn', 'sTmin', 'sTmax', 'sNoise'),
    run: (c, m, s, n, o) => euler(m, s, n, { ...o, ...(c as Settings<KarrasSamplerOptions>) }),
  },
  heun: {
    label: 'Heun (Karras σ)', defaultSteps: DEFAULT_STEPS.heun,
    settings: settingsOf<KarrasSamplerOptions>()(...SIGMA, 'sChurn', 'sTmin', 'sTmax', 'sNoise'),
    run: (c, m, s, n, o) => heun(m, s, n, { ...o, ...(c as Settings<KarrasSamplerOptions>) }),
  },
  predictorCorrector: {
    label: 'predictor–corrector', defaultSteps: DEFAULT_STEPS.predictorCorrector,
    settings: settingsOf<PredictorCorrectorOptions>()('steps', 'spacing', 'snr', 'correctorSteps'),
    run: (c, m, s, n, o) => predictorCorrector(m, s, n, { ...o, ...(c as Settings<PredictorCorrectorOptions>) }),
  },
};

export const SAMPLER_KINDS = Object.keys(SAMPLERS) as readonly SamplerKind[];

/**
 * A sampler config checked against the registry: a known kind and only the settings that kind takes (a
 * misspelt option is an error, not silently ignored). `who` names the caller in the error.
 */
export function normalizeSamplerConfig(json: unknown, who = 'sampler'): SamplerConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(who, `a sampler config must be an object, got ${JSON.stringify(json)}`);
  const c = json as { kind?: unknown };
  if (typeof c.kind !== 'string' || !(c.kind in SAMPLERS)) {
    fail(who, `unknown sampler kind ${JSON.stringify(c.kind)} (expected ${SAMPLER_KINDS.join(', ')})`);
  }
  const entry = SAMPLERS[c.kind as SamplerKind];
  const unknown = Object.keys(c).filter((k) => k !== 'kind' && !entry.settings.includes(k));
  if (unknown.length) {
    fail(who, `unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} for sampler ${c.kind} (it takes ${entry.settings.join(', ')})`);
  }
  return c as SamplerConfig;
}

/** The config's step count, or the sampler's default for this schedule. */
export function samplerSteps(config: SamplerConfig, schedule: NoiseSchedule): number {
  const c = config as { steps?: number; sigmas?: readonly number[] };
  return c.steps ?? (c.sigmas ? c.sigmas.length - 1 : SAMPLERS[config.kind].defaultSteps(schedule.T));
}

/** Starts the sampler a config names, from x_T = noise ~ N(0, I). */
export function runSampler(config: SamplerConfig, model: Model, schedule: NoiseSchedule, noise: Tensor, opts: SampleOptions = {}): SamplerRun {
  const c = normalizeSamplerConfig(config, 'runSampler');
  return SAMPLERS[c.kind].run(c, model, schedule, noise, opts);
}
