/**
 * diffusers scheduler configs (scheduler_config.json) as diffuse schedules and samplers.
 *
 * A config becomes a NoiseSchedule config, the prediction type and clipping, and — for a step count — a sampler
 * config whose timesteps and σ's are the ones diffusers' `set_timesteps` computes (numpy's rounding and
 * linspace/arange arithmetic included), with the conventions of each scheduler's `step`:
 *   DDPMScheduler                 ddpm: the listed timesteps (t − ⌊T/N⌋ before 0.32); noise on the last step when t > 0
 *   DDIMScheduler                 ddim: lands on t − ⌊T/N⌋; ᾱ after the last step 1 or ᾱ_0 (set_alpha_to_one);
 *                                 clipping keeps the model's ε
 *   DPMSolverMultistepScheduler   dpmSolverPlusPlus: orders 1–3, midpoint/heun, lower_order_final,
 *                                 final_sigmas_type; Karras σ's with rounded model timesteps
 *   EulerDiscreteScheduler,       euler / heun: σ interpolated linearly in σ at (possibly fractional) timesteps,
 *   HeunDiscreteScheduler         which the model receives; x_T scaled by σ_max for linspace/trailing spacing
 * Checked against diffusers' own schedulers on an analytic model (test/diffusers-schedulers.test.ts).
 *
 * Fields diffuse cannot honour are refused with one line naming the field and its value; fields at their
 * diffusers default are accepted whatever they are; unknown fields are refused.
 */
import type { PredictionType } from './parameterization.js';
import { type ScheduleConfig, normalizeScheduleConfig, NoiseSchedule } from './schedules.js';
import { numpyLogFloat32, torchCumprodFloat32, torchLinspaceFloat32 } from './diffusersFloat32.js';
import type { X0Clip } from './thresholding.js';
import { npArange, npLinspace, roundHalfEven, type Spacing } from './samplers/common.js';
import type { SamplerConfig } from './samplers/index.js';

export const DIFFUSERS_SCHEDULERS = ['DDPMScheduler', 'DDIMScheduler', 'DPMSolverMultistepScheduler', 'EulerDiscreteScheduler', 'HeunDiscreteScheduler'] as const;
export type DiffusersSchedulerClass = typeof DIFFUSERS_SCHEDULERS[number];

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/** A parsed scheduler config: every field with its diffusers default filled in. */
export interface DiffusersScheduler {
  className: DiffusersSchedulerClass;
  /** The config as diffusers would hold it (defaults filled). */
  config: Record<string, Json>;
  /** The schedule as a diffuse (float64) config; diffusersSchedule(s) gives the float32 tables diffusers samples with. */
  schedule: ScheduleConfig;
  prediction: PredictionType;
  /** The model's output carries learned-variance channels. */
  learnedVariance: boolean;
  clip?: X0Clip;
  /** `_diffusers_version` of the config (conventions changed across versions), or null. */
  version: string | null;
}

/** a < b for dotted versions ("0.31.0" < "0.32.0"). */
function versionBefore(a: string, b: string): boolean {
  const pa = a.split('.').map((x) => parseInt(x, 10) || 0), pb = b.split('.').map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) < (pb[i] ?? 0);
  return false;
}

const COMMON: Record<string, Json> = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear', trained_betas: null,
  prediction_type: 'epsilon', timestep_spacing: 'linspace', steps_offset: 0, rescale_betas_zero_snr: false,
};
const THRESH: Record<string, Json> = { thresholding: false, dynamic_thresholding_ratio: 0.995, sample_max_value: 1.0 };

/** Each class's fields and defaults (diffusers' __init__ signatures). */
const DEFAULTS: Record<DiffusersSchedulerClass, Record<string, Json>> = {
  DDPMScheduler: {
    ...COMMON, ...THRESH, variance_type: 'fixed_small', clip_sample: true, clip_sample_range: 1.0, timestep_spacing: 'leading',
  },
  DDIMScheduler: {
    ...COMMON, ...THRESH, clip_sample: true, set_alpha_to_one: true, clip_sample_range: 1.0, timestep_spacing: 'leading',
  },
  DPMSolverMultistepScheduler: {
    ...COMMON, ...THRESH, solver_order: 2, algorithm_type: 'dpmsolver++', solver_type: 'midpoint', lower_order_final: true,
    euler_at_final: false, use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, use_lu_lambdas: false,
    use_flow_sigmas: false, flow_shift: 1.0, final_sigmas_type: 'zero', lambda_min_clipped: '-Infinity', variance_type: null,
    use_dynamic_shifting: false, time_shift_type: 'exponential',
  },
  EulerDiscreteScheduler: {
    ...COMMON, interpolation_type: 'linear', use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false,
    sigma_min: null, sigma_max: null, timestep_type: 'discrete', final_sigmas_type: 'zero',
  },
  HeunDiscreteScheduler: {
    ...COMMON, beta_start: 0.00085, beta_end: 0.012, use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false,
    clip_sample: false, clip_sample_range: 1.0,
  },
};

/** Fields diffuse supports at any (valid) value; every other field must keep its default. */
const SUPPORTED = new Set([
  'num_train_timesteps', 'beta_start', 'beta_end', 'beta_schedule', 'trained_betas', 'prediction_type', 'timestep_spacing',
  'steps_offset', 'rescale_betas_zero_snr', 'thresholding', 'dynamic_thresholding_ratio', 'sample_max_value', 'variance_type',
  'clip_sample', 'clip_sample_range', 'set_alpha_to_one', 'solver_order', 'solver_type', 'lower_order_final', 'use_karras_sigmas',
  'final_sigmas_type', 'sigma_min', 'sigma_max',
]);

/** JSON as Python's json module writes it: bare Infinity, -Infinity and NaN become strings. */
export function parsePythonJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text.replace(/([:,[]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, '$1"$2"'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

function failField(file: string, field: string, value: unknown, why: string): never {
  throw new Error(`${file}: ${field} = ${JSON.stringify(value)} ${why}`);
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Parses and checks a scheduler_config.json (text or object). `file` names it in errors. */
export function parseDiffusersScheduler(json: unknown, file = 'scheduler_config.json'): DiffusersScheduler {
  const obj = typeof json === 'string' ? parsePythonJson(json, file) : json;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${file}: expected a JSON object`);
  const raw = obj as Record<string, Json>;
  const className = raw._class_name;
  if (!DIFFUSERS_SCHEDULERS.includes(className as DiffusersSchedulerClass)) {
    failField(file, '_class_name', className, `is not supported (supported: ${DIFFUSERS_SCHEDULERS.join(', ')})`);
  }
  const cls = className as DiffusersSchedulerClass, defaults = DEFAULTS[cls];
  const config: Record<string, Json> = { ...defaults };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('_')) continue; // _class_name, _diffusers_version, …
    if (!(k in defaults)) failField(file, k, v, `is not a field of ${cls}`);
    if (!SUPPORTED.has(k) && !same(v, defaults[k])) failField(file, k, v, `is not supported by diffuse (only ${JSON.stringify(defaults[k])})`);
    config[k] = v;
  }
  const c = config;
  const oneOf = (k: string, allowed: Json[]) => { if (!allowed.some((a) => same(a, c[k]))) failField(file, k, c[k], `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`); };
  const bool = (k: string) => { if (typeof c[k] !== 'boolean') failField(file, k, c[k], 'must be true or false'); };
  const num = (k: string, lo: number, hi: number) => { const v = c[k]; if (typeof v !== 'number' || !(v >= lo && v <= hi)) failField(file, k, v, `must be a number in [${lo}, ${hi}]`); };
  const int = (k: string, lo: number, hi: number) => { num(k, lo, hi); if (!Number.isInteger(c[k])) failField(file, k, c[k], 'must be an integer'); };

  int('num_train_timesteps', 2, 100_000);
  num('beta_start', 0, 1);
  num('beta_end', 0, 1);
  oneOf('prediction_type', ['epsilon', 'v_prediction', 'sample']);
  oneOf('timestep_spacing', ['leading', 'trailing', 'linspace']);
  int('steps_offset', 0, (c.num_train_timesteps as number) - 1);
  bool('rescale_betas_zero_snr');
  if ('thresholding' in c) { bool('thresholding'); num('dynamic_thresholding_ratio', 1e-6, 1); num('sample_max_value', 1, 1e6); }
  if ('clip_sample' in c) { bool('clip_sample'); num('clip_sample_range', 1e-6, 1e6); }
  const T = c.num_train_timesteps as number;

  let schedule: ScheduleConfig;
  const rescale = c.rescale_betas_zero_snr ? { rescaleZeroTerminalSnr: true } : {};
  if (c.trained_betas !== null) {
    const b = c.trained_betas;
    // diffusers holds them as float32: each must stay positive there.
    if (!Array.isArray(b) || b.length !== T || !b.every((x) => typeof x === 'number' && Math.fround(x) > 0 && x <= 1)) {
      failField(file, 'trained_betas', `${JSON.stringify(b).slice(0, 40)}…`, `must be ${T} numbers in (0, 1], positive in float32`);
    }
    schedule = { kind: 'custom', betas: b as number[], ...rescale };
  } else {
    const kinds: Record<string, ScheduleConfig['kind']> = { linear: 'linear', scaled_linear: 'scaledLinear', squaredcos_cap_v2: 'cosine' };
    if (cls === 'DDPMScheduler') kinds.sigmoid = 'sigmoid';
    oneOf('beta_schedule', Object.keys(kinds));
    const kind = kinds[c.beta_schedule as string];
    schedule = kind === 'cosine' ? { kind, T, s: 0.008, maxBeta: 0.999, ...rescale }
      : { kind, T, betaStart: c.beta_start as number, betaEnd: c.beta_end as number, ...rescale } as ScheduleConfig;
  }
  try {
    schedule = normalizeScheduleConfig(schedule);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  if (c.rescale_betas_zero_snr && (cls === 'EulerDiscreteScheduler' || cls === 'DPMSolverMultistepScheduler' || cls === 'HeunDiscreteScheduler')) {
    failField(file, 'rescale_betas_zero_snr', true, `is not supported for ${cls} (its σ_max is infinite)`);
  }

  let learnedVariance = false;
  if (cls === 'DDPMScheduler') {
    oneOf('variance_type', ['fixed_small', 'fixed_small_log', 'fixed_large', 'learned_range']);
    learnedVariance = c.variance_type === 'learned_range';
  }
  if (cls === 'DPMSolverMultistepScheduler') {
    oneOf('variance_type', [null, 'learned', 'learned_range']);
    learnedVariance = c.variance_type !== null;
    oneOf('solver_order', [1, 2, 3]);
    oneOf('solver_type', ['midpoint', 'heun']);
    bool('lower_order_final');
    bool('use_karras_sigmas');
    oneOf('final_sigmas_type', ['zero', 'sigma_min']);
  }
  if (cls === 'EulerDiscreteScheduler') {
    bool('use_karras_sigmas');
    oneOf('final_sigmas_type', ['zero', 'sigma_min']);
    for (const k of ['sigma_min', 'sigma_max']) if (c[k] !== null) num(k, 1e-12, 1e12);
  }
  if (cls === 'HeunDiscreteScheduler') bool('use_karras_sigmas');
  if (cls === 'DDIMScheduler') bool('set_alpha_to_one');

  let clip: X0Clip | undefined;
  if (c.thresholding === true) {
    clip = { kind: 'dynamic', percentile: c.dynamic_thresholding_ratio as number, maxValue: c.sample_max_value as number };
  } else if (c.clip_sample === true && cls !== 'DPMSolverMultistepScheduler') {
    const r = c.clip_sample_range as number;
    clip = { kind: 'clip', min: -r, max: r };
  }
  const prediction = ({ epsilon: 'epsilon', v_prediction: 'v', sample: 'x0' } as const)[c.prediction_type as 'epsilon'];
  const version = typeof raw._diffusers_version === 'string' ? raw._diffusers_version : null;
  return { className: cls, config: c, schedule, prediction, learnedVariance, version, ...(clip ? { clip } : {}) };
}

// ---- the float32 tables diffusers' schedulers hold

/** What a diffusers scheduler holds after __init__: float32 values (as doubles). */
export interface DiffusersTables {
  betas: Float64Array;
  alphasCumprod: Float64Array;
  /** σ = √((1 − ᾱ)/ᾱ) in float32, as set_timesteps computes it from alphas_cumprod. */
  sigmas: Float64Array;
  /** numpy.log of that float32 σ array (numpy's float32 log). */
  logSigmas: Float64Array;
}

const tableCache = new WeakMap<DiffusersScheduler, DiffusersTables>();

/**
 * β and ᾱ as diffusers builds them from the config, in float32 (torch.linspace / cumprod on the CPU), and σ and
 * log σ as set_timesteps derives them. Exact for every beta_schedule but sigmoid, whose torch.sigmoid (SLEEF's
 * float32 exp) is taken as the correctly rounded value here (it can differ from PyTorch's by an ulp of β).
 */
export function diffusersTables(s: DiffusersScheduler): DiffusersTables {
  const hit = tableCache.get(s);
  if (hit) return hit;
  const c = s.config, T = c.num_train_timesteps as number, f = Math.fround;
  let betas: Float64Array;
  const bs = c.beta_start as number, be = c.beta_end as number;
  if (c.trained_betas !== null) betas = Float64Array.from(c.trained_betas as number[], f);
  else if (c.beta_schedule === 'linear') betas = torchLinspaceFloat32(bs, be, T);
  else if (c.beta_schedule === 'scaled_linear') betas = torchLinspaceFloat32(Math.sqrt(bs), Math.sqrt(be), T).map((b) => f(b * b));
  else if (c.beta_schedule === 'sigmoid') {
    const range = f(be - bs), start = f(bs);
    betas = torchLinspaceFloat32(-6, 6, T).map((x) => f(f(f(1 / (1 + Math.exp(-x))) * range) + start));
  } else {
    // squaredcos_cap_v2: diffusers' betas_for_alpha_bar in Python floats, then a float32 tensor.
    const abar = (t: number) => Math.cos((t + 0.008) / 1.008 * Math.PI / 2) ** 2;
    betas = new Float64Array(T);
    for (let i = 0; i < T; i++) betas[i] = f(Math.min(1 - abar((i + 1) / T) / abar(i / T), 0.999));
  }
  if (c.rescale_betas_zero_snr) {
    // rescale_zero_terminal_snr, float32 tensor by tensor.
    const sq = torchCumprodFloat32(betas.map((b) => f(1 - b))).map((a) => f(Math.sqrt(a)));
    const s0 = sq[0], sT = sq[T - 1], scale = f(s0 / f(s0 - sT));
    const ab = sq.map((v) => { const x = f(f(v - sT) * scale); return f(x * x); });
    betas = ab.map((v, i) => f(1 - (i === 0 ? v : f(v / ab[i - 1]))));
  }
  const alphasCumprod = torchCumprodFloat32(betas.map((b) => f(1 - b)));
  const sigmas = alphasCumprod.map((a) => f(Math.sqrt(f(f(1 - a) / a))));
  const logSigmas = sigmas.map(numpyLogFloat32);
  const t: DiffusersTables = { betas, alphasCumprod, sigmas, logSigmas };
  tableCache.set(s, t);
  return t;
}

/** The noise schedule a diffusers scheduler holds: its float32 β and ᾱ tables (see diffusersTables). */
export function diffusersSchedule(s: DiffusersScheduler): NoiseSchedule {
  const t = diffusersTables(s);
  return new NoiseSchedule({ kind: 'custom', betas: Array.from(t.betas) }, t.alphasCumprod);
}

// ---- timesteps and σ's as diffusers' set_timesteps computes them

/** numpy.interp(x, arange(len(fp)), fp) for x inside [0, len − 1], in float64 (as numpy computes it). */
function npInterpUnit(x: number, fp: Float64Array): number {
  const n = fp.length;
  if (x >= n - 1) return fp[n - 1];
  const j = Math.floor(x);
  if (x === j) return fp[j];
  return (fp[j + 1] - fp[j]) * (x - j) + fp[j];
}

/**
 * diffusers' _sigma_to_t: linear interpolation of log σ in a float32 log σ table. numpy's value-based casting
 * makes most of it float32: log σ (a float64 scalar) meets the float32 table, so the distances, the bracket's
 * differences and the weight are float32; only the final blend (weight × int64 index) is float64.
 */
function diffusersSigmaToT(sigma: number, logSigmas: Float64Array): number {
  const f = Math.fround, ls = f(Math.log(Math.max(sigma, 1e-10))), n = logSigmas.length;
  let lowIdx = 0;
  for (let i = 0; i < n; i++) if (ls >= logSigmas[i]) lowIdx = i;
  lowIdx = Math.min(lowIdx, n - 2);
  const low = logSigmas[lowIdx], high = logSigmas[lowIdx + 1];
  const w = Math.min(Math.max(f(f(low - ls) / f(low - high)), 0), 1);
  return f(1 - w) * lowIdx + w * (lowIdx + 1);
}

/** Karras σ's with numpy's ramp (linspace(0, 1, n)), ρ = 7, in float64. */
function karras(n: number, sigmaMin: number, sigmaMax: number): number[] {
  const rho = 7, minInv = sigmaMin ** (1 / rho), maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** The discrete timesteps of DDPM/DDIM (numpy's rounding). */
function discreteTimesteps(T: number, n: number, spacing: Spacing, offset: number): number[] {
  if (spacing === 'linspace') return npLinspace(0, T - 1, n).map(roundHalfEven).reverse();
  if (spacing === 'leading') return Array.from({ length: n }, (_, i) => (n - 1 - i) * Math.floor(T / n) + offset);
  return npArange(T, 0, -T / n).map((t) => roundHalfEven(t) - 1).filter((t) => t >= 0); // see spacedTimesteps
}

/** What a scheduler's set_timesteps yields: model timesteps, and for σ schedulers the σ's (one more: the final level). */
export interface DiffusersGrid {
  timesteps: number[];
  sigmas?: number[];
  /** x_T = noise · initNoiseSigma (diffusers' init_noise_sigma). */
  initNoiseSigma: number;
}

/**
 * The timesteps, σ's and init_noise_sigma of `set_timesteps(steps)`, equal to diffusers' float32 values: from
 * the float32 tables (diffusersTables), with numpy's float64 steps where diffusers takes them (interpolation,
 * Karras σ's) and float32 rounding where it stores float32 (timesteps of the σ schedulers, every σ).
 */
export function diffusersGrid(s: DiffusersScheduler, steps: number): DiffusersGrid {
  const c = s.config, T = c.num_train_timesteps as number, spacing = c.timestep_spacing as Spacing, offset = c.steps_offset as number;
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new Error(`${s.className}: steps must be an integer in [1, ${T}], got ${steps}`);
  if (s.className === 'DDPMScheduler' || s.className === 'DDIMScheduler') {
    const timesteps = discreteTimesteps(T, steps, spacing, offset);
    if (timesteps.some((t) => t > T - 1 || t < 0)) throw new Error(`${s.className}: steps_offset ${offset} puts a timestep past ${T - 1}`);
    return { timesteps, initNoiseSigma: 1 };
  }
  const f = Math.fround, { sigmas: sig, logSigmas: logSig } = diffusersTables(s);
  // sigma_last of final_sigmas_type sigma_min: ((1 − ᾱ_0)/ᾱ_0)^0.5 in float32, the table's first σ.
  const last = c.final_sigmas_type === 'sigma_min' ? sig[0] : 0;
  if (s.className === 'DPMSolverMultistepScheduler') {
    let ts: number[];
    if (spacing === 'linspace') ts = npLinspace(0, T - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
    else if (spacing === 'leading') {
      const ratio = Math.floor(T / (steps + 1));
      ts = Array.from({ length: steps + 1 }, (_, i) => (steps - i) * ratio).slice(0, -1).map((t) => t + offset);
    } else ts = npArange(T, 0, -T / steps).map((t) => roundHalfEven(t) - 1).filter((t) => t >= 0);
    let sigmas: number[];
    if (c.use_karras_sigmas) {
      sigmas = karras(steps, sig[0], sig[T - 1]);
      // Rounded to the nearest timestep; since 0.33 not for the cosine schedule, whose int64 cast then truncates.
      const truncate = c.beta_schedule === 'squaredcos_cap_v2' && !(s.version && versionBefore(s.version, '0.33.0'));
      ts = sigmas.map((x) => (truncate ? Math.trunc : roundHalfEven)(diffusersSigmaToT(x, logSig)));
    } else {
      sigmas = ts.map((t) => npInterpUnit(t, sig));
    }
    sigmas.push(last);
    return { timesteps: ts, sigmas: sigmas.map(f), initNoiseSigma: 1 };
  }
  // Euler and Heun: timesteps fractional for linspace, σ interpolated linearly in σ (float64).
  let ts: number[];
  if (spacing === 'linspace') ts = npLinspace(0, T - 1, steps).map(f).reverse();
  else if (spacing === 'leading') ts = Array.from({ length: steps }, (_, i) => (steps - 1 - i) * Math.floor(T / steps) + offset);
  else ts = npArange(T, 0, -T / steps).map((t) => roundHalfEven(t) - 1).filter((t) => t >= 0);
  let sigmas = ts.map((t) => npInterpUnit(t, sig));
  if (c.use_karras_sigmas) {
    const lo = (c.sigma_min as number | null | undefined) ?? sigmas[sigmas.length - 1];
    const hi = (c.sigma_max as number | null | undefined) ?? sigmas[0];
    sigmas = karras(steps, lo, hi);
    ts = sigmas.map((x) => diffusersSigmaToT(x, logSig));
  }
  sigmas = sigmas.map(f);
  sigmas.push(last);
  // Euler stores its timesteps as float32; Heun keeps _sigma_to_t's float64 ones (Karras), float32 otherwise.
  if (s.className === 'EulerDiscreteScheduler' || !c.use_karras_sigmas) ts = ts.map(f);
  // init_noise_sigma: the largest float32 σ; for leading spacing (σ_max² + 1)^0.5, a float32 tensor expression.
  const sigmaMax = Math.max(...sigmas);
  return { timesteps: ts, sigmas, initNoiseSigma: spacing === 'leading' ? f(Math.sqrt(f(f(sigmaMax * sigmaMax) + 1))) : sigmaMax };
}

/** The diffuse sampler that runs `steps` steps as the diffusers scheduler does (`eta`: DDIM's η, a pipeline argument). */
export function diffusersSamplerConfig(s: DiffusersScheduler, steps: number, opts: { eta?: number; schedule?: NoiseSchedule } = {}): SamplerConfig {
  const schedule = opts.schedule ?? diffusersSchedule(s);
  const g = diffusersGrid(s, steps), c = s.config;
  // final_sigmas_type = sigma_min on a grid that already ends at σ_min repeats it: diffusers' last step is then
  // a step of length 0 (Euler, Heun: a no-op; DPM-Solver: 0/0, NaN). Here that level is left out.
  const sig = g.sigmas;
  if (sig && sig.length > 2 && sig[sig.length - 1] === sig[sig.length - 2]) sig.pop();
  switch (s.className) {
    case 'DDPMScheduler':
      return {
        // Before 0.32 DDPMScheduler stepped to t − ⌊T/N⌋; since then to the next listed timestep.
        kind: 'ddpm', timesteps: g.timesteps, lastStepNoise: 'ifPositive',
        prevTimestep: s.version && versionBefore(s.version, '0.32.0') ? 'stride' : 'next',
        variance: c.variance_type === 'fixed_large' ? 'fixedLarge' : c.variance_type === 'learned_range' ? 'learnedRange' : 'fixedSmall',
      };
    case 'DDIMScheduler':
      return {
        kind: 'ddim', timesteps: g.timesteps, prevTimestep: 'stride', clipEps: 'model', eta: opts.eta ?? 0,
        finalAlphaCumprod: c.set_alpha_to_one ? 1 : schedule.alphasCumprod[0],
      };
    case 'DPMSolverMultistepScheduler':
      return {
        kind: 'dpmSolverPlusPlus', sigmas: g.sigmas, timesteps: g.timesteps, order: c.solver_order as 1 | 2 | 3,
        solverType: c.solver_type as 'midpoint' | 'heun', lowerOrderFinal: c.lower_order_final as boolean,
      };
    case 'EulerDiscreteScheduler':
    case 'HeunDiscreteScheduler':
      return {
        kind: s.className === 'EulerDiscreteScheduler' ? 'euler' : 'heun', sigmas: g.sigmas, timesteps: g.timesteps,
        initNoiseSigma: g.initNoiseSigma, outputScale: 've',
      };
  }
}
