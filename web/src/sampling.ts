/**
 * The reverse panel's sampling without the DOM, so Node tests run the explorer's own code: which sampler a model
 * runs with the panel's settings (a distilled student: DDIM in its own steps, its guidance already folded in),
 * and the start of that sampler run from a seed.
 */
import {
  Generator, classifierFreeGuidance, randn, runSampler, tensor,
  type InpaintOptions, type Model, type SamplerKind, type SamplerRun, type Tensor, type UNet,
} from '../../src/index.js';
import type { LoadedModel, WebModelJson } from './assets.js';

/** What runs: the sampler, its steps, and the guidance scale applied at sampling time (1: none). */
export interface SamplingPlan {
  kind: SamplerKind;
  steps: number;
  guidance: number;
  /** A distilled student's guidance, folded into its weights (not applied again). */
  folded?: number;
}

/**
 * The plan for a model and the panel's sampler, steps and guidance. A distilled student learned exactly the
 * DDIM steps of its trailing grid, so it runs those (anything else is a model it was not trained to be), with
 * guidance 1: a second, guided evaluation would apply the guidance twice.
 */
export function samplingPlan(json: WebModelJson, s: { kind: SamplerKind; steps: number; guidance: number }): SamplingPlan {
  const d = json.distilled;
  return d ? { kind: 'ddim', steps: d.steps, guidance: 1, folded: d.guidance } : { kind: s.kind, steps: s.steps, guidance: s.guidance };
}

export interface SamplingStart {
  /** x_T, drawn from the seed. */
  noise: Tensor;
  run: SamplerRun;
  /** Whether classifier-free guidance runs (two evaluations per step). */
  guided: boolean;
}

/**
 * A sampling of `count` images of class `cls` (the null class: numClasses) from `seed`: the noise is the seed's
 * first draw, as in the library's sampleImages, and x̂_0 is clipped to [−1, 1] as the CLI does.
 */
export function startSampling(m: LoadedModel<UNet>, plan: SamplingPlan, o: { seed: number; cls: number; count: number; inpaint?: InpaintOptions }): SamplingStart {
  const c = m.model.config, n = o.count;
  const gen = new Generator(o.seed);
  const noise = randn([n, c.inChannels, c.imageSize, c.imageSize], gen);
  const guided = o.cls !== c.numClasses && plan.guidance !== 1;
  let fn: Model = (x, t, cond) => m.model.forward(x, t, cond);
  const cond = tensor(new Int32Array(n).fill(o.cls), [n], { dtype: 'int32' });
  if (guided) fn = classifierFreeGuidance(fn, { scale: plan.guidance, nullCond: tensor(new Int32Array([c.numClasses]), [1], { dtype: 'int32' }) });
  const run = runSampler({ kind: plan.kind, steps: plan.steps }, fn, m.schedule, noise, {
    prediction: m.json.prediction, cond, gen, clip: { kind: 'clip', min: -1, max: 1 }, inpaint: o.inpaint,
  });
  return { noise, run, guided };
}
