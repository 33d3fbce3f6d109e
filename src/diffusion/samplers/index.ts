/**
 * One entry point for every sampler: a JSON-able config picks the algorithm and its settings, the common
 * options (conditioning, clipping, inpainting, image-to-image) are shared.
 */
import type { Tensor } from '../../tensor/index.js';
import type { NoiseSchedule } from '../schedules.js';
import { fail } from '../util.js';
import type { Model, SampleOptions, SamplerRun } from './common.js';
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
export const SAMPLER_KINDS: readonly SamplerKind[] = ['ddpm', 'ddim', 'dpmSolverPlusPlus', 'euler', 'heun', 'predictorCorrector'];

/** Starts the sampler a config names, from x_T = noise ~ N(0, I). */
export function runSampler(config: SamplerConfig, model: Model, schedule: NoiseSchedule, noise: Tensor, opts: SampleOptions = {}): SamplerRun {
  const c = config;
  switch (c.kind) {
    case 'ddpm': return ddpm(model, schedule, noise, { ...opts, ...c });
    case 'ddim': return ddim(model, schedule, noise, { ...opts, ...c });
    case 'dpmSolverPlusPlus': return dpmSolverPlusPlus(model, schedule, noise, { ...opts, ...c });
    case 'euler': return euler(model, schedule, noise, { ...opts, ...c });
    case 'heun': return heun(model, schedule, noise, { ...opts, ...c });
    case 'predictorCorrector': return predictorCorrector(model, schedule, noise, { ...opts, ...c });
    default: return fail('runSampler', `unknown sampler kind ${JSON.stringify((c as { kind: unknown }).kind)} (expected ${SAMPLER_KINDS.join(', ')})`);
  }
}
