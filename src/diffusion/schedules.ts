/**
 * Noise schedules of the discrete forward process q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I), t ∈ {0, …, T−1}.
 *
 * Indexing follows diffusers / improved-diffusion: index t is the paper's step t+1, so index 0 is the first
 * noising step and "t − 1" of index 0 is the data itself (ᾱ_{−1} = 1).
 *
 * Notation (Ho et al. 2020; Nichol & Dhariwal 2021; Kingma et al. 2021; Karras et al. 2022):
 *   betas[t]            β_t
 *   alphas[t]           α_t = 1 − β_t
 *   alphasCumprod[t]    ᾱ_t = Π_{s≤t} α_s
 *   sqrtAlphasCumprod   √ᾱ_t            (the signal scale, "α" of VDM)
 *   sigmas[t]           σ_t = √(1 − ᾱ_t) (the noise scale of x_t = √ᾱ_t x_0 + σ_t ε)
 *   snr[t], logSnr[t]   SNR_t = ᾱ_t / (1 − ᾱ_t), λ_t = log SNR_t
 *   sigmasVE[t]         √((1 − ᾱ_t)/ᾱ_t) = 1/√SNR_t: the σ of k-diffusion / EDM (x / √ᾱ_t = x_0 + σ ε)
 *   posteriorVariance   β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
 *
 * All of it is float64 on the host: schedules are tiny, and float32 products of 1000 α's (or 1 − ᾱ near
 * t = 0) lose the digits that samplers depend on. Only per-step coefficients reach float32 tensors.
 */
import { fail as failIn } from './util.js';

export type ScheduleKind = 'linear' | 'scaledLinear' | 'cosine' | 'sigmoid' | 'custom';

interface Common {
  /** Rescale to zero terminal SNR (Lin et al. 2023, Algorithm 1); then ᾱ_{T−1} = 0. */
  rescaleZeroTerminalSnr?: boolean;
}

/** β linear from betaStart to betaEnd (DDPM, Ho et al. 2020: 1e-4 → 0.02 over T = 1000). */
export interface LinearScheduleConfig extends Common { kind: 'linear'; T: number; betaStart?: number; betaEnd?: number }
/** √β linear from √betaStart to √betaEnd (Stable Diffusion's "scaled_linear": 0.00085 → 0.012). */
export interface ScaledLinearScheduleConfig extends Common { kind: 'scaledLinear'; T: number; betaStart?: number; betaEnd?: number }
/**
 * ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2), β_t = min(1 − ᾱ(t+1)/ᾱ(t), maxBeta)
 * (Nichol & Dhariwal 2021, eq. 17; s = 0.008, β capped at 0.999).
 */
export interface CosineScheduleConfig extends Common { kind: 'cosine'; T: number; s?: number; maxBeta?: number }
/** β = sigmoid(linspace(−6, 6, T)) · (betaEnd − betaStart) + betaStart (GeoDiff; diffusers' "sigmoid"). */
export interface SigmoidScheduleConfig extends Common { kind: 'sigmoid'; T: number; betaStart?: number; betaEnd?: number }
/** User-given β_0 … β_{T−1}, each in (0, 1]. */
export interface CustomScheduleConfig extends Common { kind: 'custom'; betas: number[] }

/** A schedule as JSON: `{ kind: 'cosine', T: 1000, s: 0.008 }`. `makeSchedule(cfg).toJSON()` fills the defaults. */
export type ScheduleConfig =
  | LinearScheduleConfig | ScaledLinearScheduleConfig | CosineScheduleConfig | SigmoidScheduleConfig | CustomScheduleConfig;

const KINDS: readonly ScheduleKind[] = ['linear', 'scaledLinear', 'cosine', 'sigmoid', 'custom'];
const FIELDS: Record<ScheduleKind, readonly string[]> = {
  linear: ['kind', 'T', 'betaStart', 'betaEnd', 'rescaleZeroTerminalSnr'],
  scaledLinear: ['kind', 'T', 'betaStart', 'betaEnd', 'rescaleZeroTerminalSnr'],
  cosine: ['kind', 'T', 's', 'maxBeta', 'rescaleZeroTerminalSnr'],
  sigmoid: ['kind', 'T', 'betaStart', 'betaEnd', 'rescaleZeroTerminalSnr'],
  custom: ['kind', 'betas', 'rescaleZeroTerminalSnr'],
};

function fail(msg: string): never {
  return failIn('makeSchedule', msg);
}

/** Longest schedule accepted: every per-step table is allocated at this length (DDPM uses 1,000, iDDPM 4,000). */
export const MAX_TIMESTEPS = 100_000;

function checkT(T: unknown): number {
  if (typeof T !== 'number' || !Number.isInteger(T) || T <= 0 || T > MAX_TIMESTEPS) {
    fail(`T must be an integer in 1…${MAX_TIMESTEPS}, got ${JSON.stringify(T)}`);
  }
  return T;
}

function checkRange(name: string, v: unknown, lo: number, hi: number, loOpen = true): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (loOpen ? v <= lo : v < lo) || v > hi) {
    fail(`${name} must be a number in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validates a config (unknown kind, T ≤ 0, bad β, unknown fields throw) and fills its defaults. */
export function normalizeScheduleConfig(config: unknown): ScheduleConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) fail(`config must be an object, got ${JSON.stringify(config)}`);
  const c = config as Record<string, unknown>;
  const kind = c.kind as ScheduleKind;
  if (!KINDS.includes(kind)) fail(`unknown schedule kind ${JSON.stringify(c.kind)} (expected one of ${KINDS.join(', ')})`);
  const extra = Object.keys(c).filter((k) => !FIELDS[kind].includes(k));
  if (extra.length) fail(`unknown field(s) ${extra.join(', ')} for kind '${kind}'`);
  const rescale = c.rescaleZeroTerminalSnr ?? false;
  if (typeof rescale !== 'boolean') fail(`rescaleZeroTerminalSnr must be a boolean, got ${JSON.stringify(rescale)}`);
  const r = rescale ? { rescaleZeroTerminalSnr: true } : {};
  switch (kind) {
    case 'linear':
    case 'sigmoid':
    case 'scaledLinear': {
      const [d0, d1] = kind === 'scaledLinear' ? [0.00085, 0.012] : [1e-4, 0.02];
      const betaStart = checkRange('betaStart', c.betaStart ?? d0, 0, 1);
      const betaEnd = checkRange('betaEnd', c.betaEnd ?? d1, 0, 1);
      return { kind, T: checkT(c.T), betaStart, betaEnd, ...r };
    }
    case 'cosine':
      return { kind, T: checkT(c.T), s: checkRange('s', c.s ?? 0.008, 0, 1, false), maxBeta: checkRange('maxBeta', c.maxBeta ?? 0.999, 0, 1), ...r };
    case 'custom': {
      const b = c.betas;
      if (!Array.isArray(b) || b.length === 0 || b.length > MAX_TIMESTEPS) {
        fail(`custom betas must be an array of 1…${MAX_TIMESTEPS} values, got ${Array.isArray(b) ? `${b.length} values` : JSON.stringify(b)?.slice(0, 60)}`);
      }
      b.forEach((v, i) => checkRange(`betas[${i}]`, v, 0, 1));
      return { kind, betas: [...(b as number[])], ...r };
    }
  }
}

/** β_0 … β_{T−1} of a (normalized) config, before any zero-terminal-SNR rescaling. */
export function betasFor(config: ScheduleConfig): Float64Array {
  const c = normalizeScheduleConfig(config);
  if (c.kind === 'custom') return Float64Array.from(c.betas);
  const T = c.T, out = new Float64Array(T);
  const lin = (a: number, b: number, i: number) => (T === 1 ? a : a + (b - a) * (i / (T - 1)));
  switch (c.kind) {
    case 'linear':
      for (let i = 0; i < T; i++) out[i] = lin(c.betaStart!, c.betaEnd!, i);
      break;
    case 'scaledLinear':
      for (let i = 0; i < T; i++) out[i] = lin(Math.sqrt(c.betaStart!), Math.sqrt(c.betaEnd!), i) ** 2;
      break;
    case 'sigmoid':
      for (let i = 0; i < T; i++) out[i] = c.betaStart! + (c.betaEnd! - c.betaStart!) / (1 + Math.exp(-lin(-6, 6, i)));
      break;
    case 'cosine': {
      const s = c.s!;
      const f = (t: number) => Math.cos(((t / T + s) / (1 + s)) * Math.PI / 2) ** 2;
      for (let i = 0; i < T; i++) out[i] = Math.min(1 - f(i + 1) / f(i), c.maxBeta!);
      break;
    }
  }
  return out;
}

/**
 * Lin et al. 2023 ("Common Diffusion Noise Schedules and Sample Steps are Flawed"), Algorithm 1: shift √ᾱ so
 * its last value is 0 and scale it so its first value is unchanged; β follows. The last β becomes 1.
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const T = betas.length;
  if (T < 2) throw new Error(`rescaleZeroTerminalSnr: needs T ≥ 2, got ${T}`);
  const sq = new Float64Array(T);
  let ab = 1;
  for (let i = 0; i < T; i++) { ab *= 1 - betas[i]; sq[i] = Math.sqrt(ab); }
  const first = sq[0], last = sq[T - 1];
  const out = new Float64Array(T);
  let prev = 1;
  for (let i = 0; i < T; i++) {
    const a = ((sq[i] - last) * first) / (first - last);
    const abar = a * a;
    out[i] = 1 - abar / prev;
    prev = abar;
  }
  return out;
}

/** A schedule with every derived quantity, float64. Build one with `makeSchedule(config)`. */
export class NoiseSchedule {
  readonly config: ScheduleConfig;
  readonly T: number;
  readonly betas: Float64Array;
  readonly alphas: Float64Array;
  readonly alphasCumprod: Float64Array;
  /** ᾱ_{t−1}, with ᾱ_{−1} = 1. */
  readonly alphasCumprodPrev: Float64Array;
  readonly sqrtAlphasCumprod: Float64Array;
  /** σ_t = √(1 − ᾱ_t). */
  readonly sigmas: Float64Array;
  readonly snr: Float64Array;
  readonly logSnr: Float64Array;
  /** k-diffusion / EDM σ = √((1 − ᾱ_t)/ᾱ_t); Infinity where ᾱ_t = 0. */
  readonly sigmasVE: Float64Array;
  /** β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t); 0 at t = 0. */
  readonly posteriorVariance: Float64Array;
  /** log β̃_t with t = 0 replaced by log β̃_1 (β̃_0 = 0), as Improved DDPM. */
  readonly posteriorLogVarianceClipped: Float64Array;
  /** μ̃_t = coef1 · x_0 + coef2 · x_t. */
  readonly posteriorMeanCoef1: Float64Array;
  readonly posteriorMeanCoef2: Float64Array;

  /**
   * `alphasCumprod`, when given, is the ᾱ table as some other code holds it (diffusers' float32 table: see
   * diffusersSchedule), used as it is instead of the float64 product of the config's α's.
   */
  constructor(config: ScheduleConfig, alphasCumprod?: ArrayLike<number>) {
    const c = normalizeScheduleConfig(config);
    this.config = c;
    let betas = betasFor(c);
    if (c.rescaleZeroTerminalSnr) betas = rescaleZeroTerminalSnr(betas);
    const T = this.T = betas.length;
    this.betas = betas;
    const A = (f: (i: number) => number) => { const a = new Float64Array(T); for (let i = 0; i < T; i++) a[i] = f(i); return a; };
    this.alphas = A((i) => 1 - betas[i]);
    let ac = new Float64Array(T);
    if (alphasCumprod) {
      if (alphasCumprod.length !== T) fail(`alphasCumprod has ${alphasCumprod.length} values for ${T} betas`);
      ac = Float64Array.from(alphasCumprod);
    } else {
      let p = 1;
      for (let i = 0; i < T; i++) { p *= this.alphas[i]; ac[i] = p; }
      // Rounding can leave a tiny positive ᾱ where the rescale meant 0 (or a cap of 1 give exactly 0).
      if (c.rescaleZeroTerminalSnr) ac[T - 1] = 0;
    }
    this.alphasCumprod = ac;
    this.alphasCumprodPrev = A((i) => (i === 0 ? 1 : ac[i - 1]));
    this.sqrtAlphasCumprod = A((i) => Math.sqrt(ac[i]));
    this.sigmas = A((i) => Math.sqrt(1 - ac[i]));
    this.snr = A((i) => ac[i] / (1 - ac[i]));
    this.logSnr = A((i) => Math.log(ac[i]) - Math.log1p(-ac[i]));
    this.sigmasVE = A((i) => Math.sqrt((1 - ac[i]) / ac[i]));
    const prev = this.alphasCumprodPrev;
    this.posteriorVariance = A((i) => (betas[i] * (1 - prev[i])) / (1 - ac[i]));
    this.posteriorLogVarianceClipped = A((i) => Math.log(this.posteriorVariance[i === 0 && T > 1 ? 1 : i]));
    this.posteriorMeanCoef1 = A((i) => (betas[i] * Math.sqrt(prev[i])) / (1 - ac[i]));
    this.posteriorMeanCoef2 = A((i) => ((1 - prev[i]) * Math.sqrt(this.alphas[i])) / (1 - ac[i]));
    for (let i = 0; i < T; i++) {
      if (!(ac[i] >= 0 && ac[i] < 1) || (i > 0 && ac[i] > ac[i - 1])) fail(`ᾱ_${i} = ${ac[i]} is not in [0, 1) and non-increasing`);
    }
  }

  /**
   * ᾱ at a real-valued timestep t ∈ [0, T−1]: exact at integers, in between by linear interpolation of log σ_VE
   * (equivalently of log-SNR), so that `alphaBarAt(sigmaToT(σ)) = 1/(1 + σ²)`: the mapping k-diffusion uses to
   * drive a discrete-time model at continuous σ.
   */
  alphaBarAt(t: number): number {
    this.checkT('alphaBarAt', t);
    const lo = Math.floor(t);
    if (lo === t) return this.alphasCumprod[t];
    const w = t - lo, l0 = this.logSnr[lo], l1 = this.logSnr[lo + 1];
    const lam = l1 === -Infinity ? -Infinity : (1 - w) * l0 + w * l1;
    return 1 / (1 + Math.exp(-lam));
  }

  /** The timestep t ∈ [0, T−1] whose interpolated σ_VE is `sigma` (clamped to the schedule's range). */
  sigmaToT(sigma: number): number {
    if (!(sigma > 0)) throw new RangeError(`sigmaToT: sigma must be positive, got ${sigma}`);
    const ls = Math.log(sigma), T = this.T, s = this.sigmasVE;
    if (ls <= Math.log(s[0])) return 0;
    if (ls >= Math.log(s[T - 1])) return T - 1;
    let lo = 0, hi = T - 1; // invariant: log s[lo] < ls < log s[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (Math.log(s[mid]) <= ls) lo = mid; else hi = mid;
    }
    const a = Math.log(s[lo]), b = Math.log(s[hi]);
    return b === Infinity ? lo : lo + (ls - a) / (b - a);
  }

  /** σ_VE at a real-valued timestep (inverse of sigmaToT). */
  tToSigma(t: number): number {
    const ab = this.alphaBarAt(t);
    return Math.sqrt((1 - ab) / ab);
  }

  /** The largest finite σ_VE (the last one, unless the schedule has zero terminal SNR). */
  get sigmaMax(): number {
    const s = this.sigmasVE;
    return Number.isFinite(s[this.T - 1]) ? s[this.T - 1] : s[this.T - 2];
  }

  get sigmaMin(): number {
    return this.sigmasVE[0];
  }

  private checkT(fn: string, t: number): void {
    if (!(t >= 0 && t <= this.T - 1)) throw new RangeError(`${fn}: timestep ${t} is out of range [0, ${this.T - 1}]`);
  }

  /** The config with its defaults filled: `makeSchedule(JSON.parse(JSON.stringify(s)))` rebuilds it. */
  toJSON(): ScheduleConfig {
    return this.config;
  }

  /** Columns for plots: t, β, α, ᾱ, σ, SNR, log-SNR. */
  table(): { t: number; beta: number; alpha: number; alphaBar: number; sigma: number; snr: number; logSnr: number }[] {
    return Array.from({ length: this.T }, (_, t) => ({
      t, beta: this.betas[t], alpha: this.alphas[t], alphaBar: this.alphasCumprod[t], sigma: this.sigmas[t],
      snr: this.snr[t], logSnr: this.logSnr[t],
    }));
  }
}

/** A schedule from its JSON config (see ScheduleConfig). */
export function makeSchedule(config: ScheduleConfig): NoiseSchedule {
  return new NoiseSchedule(config);
}

/** Same as makeSchedule, for configs read from JSON (an unknown value is checked the same way). */
export function scheduleFromJSON(json: unknown): NoiseSchedule {
  return new NoiseSchedule(json as ScheduleConfig);
}
