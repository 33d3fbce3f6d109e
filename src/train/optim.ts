/**
 * AdamW (torch.optim.AdamW semantics), gradient clipping by global norm, and the warmup + cosine
 * learning-rate schedule.
 */
import { Module, type StateEntry, type StateEntryLike } from '../nn/module.js';
import {
  Tensor, adamWUpdate, add, concat, div, keep, minimum, mul, reshape, scalar, sqrt, square, sum, tensor, zeros,
} from '../tensor/index.js';

/** Parameters, as a module (named as its state dict), named pairs, or a plain list (named 0, 1, …). */
export type ParamsLike = Module | Iterable<[string, Tensor]> | Iterable<Tensor>;

/** Normalizes ParamsLike to named pairs; names must be unique and every tensor float32 with requiresGrad. */
export function namedParams(params: ParamsLike, who = 'optimizer'): [string, Tensor][] {
  let list: [string, Tensor][];
  if (params instanceof Module) {
    list = [...params.namedParameters()];
  } else {
    list = [];
    let i = 0;
    for (const item of params as Iterable<[string, Tensor] | Tensor>) {
      list.push(item instanceof Tensor ? [String(i), item] : [item[0], item[1]]);
      i++;
    }
  }
  const seen = new Set<string>(), tensors = new Set<Tensor>();
  for (const [name, p] of list) {
    if (!(p instanceof Tensor) || p.dtype !== 'float32') throw new TypeError(`${who}: '${name}' is not a float32 tensor`);
    if (!p.requiresGrad) throw new Error(`${who}: parameter '${name}' does not require gradients`);
    if (seen.has(name)) throw new Error(`${who}: duplicate parameter name '${name}'`);
    if (tensors.has(p)) throw new Error(`${who}: parameter '${name}' is listed twice`);
    seen.add(name);
    tensors.add(p);
  }
  return list;
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Which parameters get weight decay (default: all, as torch.optim.AdamW with one param group). */
  decay?: (name: string, p: Tensor) => boolean;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * Everything needed to resume: hyperparameters, per-parameter step counts, and the moments as tensors named
 * `exp_avg.<param>` / `exp_avg_sq.<param>` (a Map that serializeSafetensors accepts as is; `hyper` and
 * `steps` are JSON for the file's metadata).
 */
export interface OptimizerState {
  hyper: AdamWHyper;
  steps: Record<string, number>;
  tensors: Map<string, StateEntry>;
}

interface Slot {
  /** Tensors held outside any scope, updated in place (on the device, on a device backend). */
  m: Tensor;
  v: Tensor;
  step: number;
}

/** A tensor that outlives the scope it is made in (optimizer moments, EMA shadows): its owner disposes it. */
export function persistent(t: Tensor): Tensor {
  return keep(t);
}

/** A copy of the values, on any backend. */
export async function readCopy(t: Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.read());
}

/**
 * torch.optim.AdamW: for each parameter with a gradient, step += 1; p ← p·(1 − lr·wd);
 * m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr·(m/(1−β1^step)) / (√(v/(1−β2^step)) + eps).
 * Parameters without a gradient are skipped (their step count does not advance), as in PyTorch.
 * The update runs in place on the parameter's data (src/tensor adamWUpdate: the fused kernel where the backend
 * has one).
 */
export class AdamW {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  readonly params: readonly [string, Tensor][];
  private readonly decayMask: boolean[];
  private readonly slots = new Map<string, Slot>();

  constructor(params: ParamsLike, { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 1e-2, decay }: AdamWOptions = {}) {
    this.params = namedParams(params, 'AdamW');
    this.lr = lr;
    [this.beta1, this.beta2] = betas;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.checkHyper();
    this.decayMask = this.params.map(([n, p]) => (decay ? decay(n, p) : true));
  }

  private checkHyper(): void {
    const { lr, beta1, beta2, eps, weightDecay } = this;
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new RangeError(`AdamW: invalid learning rate ${lr}`);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new RangeError(`AdamW: invalid betas (${beta1}, ${beta2})`);
    if (!(eps >= 0)) throw new RangeError(`AdamW: invalid eps ${eps}`);
    if (!(weightDecay >= 0)) throw new RangeError(`AdamW: invalid weight decay ${weightDecay}`);
  }

  /** One update with learning rate `lr` (default: this.lr, which it then becomes). */
  step(lr: number = this.lr): void {
    this.lr = lr;
    this.checkHyper();
    this.params.forEach(([name, p], i) => {
      const g = p.grad;
      if (!g) return;
      if (g.size !== p.size) {
        throw new Error(`AdamW: gradient of '${name}' has shape [${g.shape.join(', ')}], the parameter [${p.shape.join(', ')}]`);
      }
      let s = this.slots.get(name);
      if (!s) {
        s = { m: persistent(zeros(p.shape)), v: persistent(zeros(p.shape)), step: 0 };
        this.slots.set(name, s);
      }
      s.step++;
      adamWUpdate(p, g, s.m, s.v, {
        lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.decayMask[i] ? this.weightDecay : 0, step: s.step,
      });
    });
  }

  /** Clears the gradients of every parameter. */
  zeroGrad(): void {
    for (const [, p] of this.params) p.grad = null;
  }

  /** The largest per-parameter step count (the number of steps taken, when every parameter gets a gradient). */
  get stepCount(): number {
    let n = 0;
    for (const s of this.slots.values()) n = Math.max(n, s.step);
    return n;
  }

  /** A copy of the state (see OptimizerState), read back from the device on a device backend (at once on the CPU). */
  async stateDict(): Promise<OptimizerState> {
    const tensors = new Map<string, StateEntry>(), steps: Record<string, number> = {};
    for (const [name, p] of this.params) {
      const s = this.slots.get(name);
      if (!s) continue;
      steps[name] = s.step;
      tensors.set(`exp_avg.${name}`, { shape: [...p.shape], data: await readCopy(s.m) });
      tensors.set(`exp_avg_sq.${name}`, { shape: [...p.shape], data: await readCopy(s.v) });
    }
    return {
      hyper: { lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay },
      steps, tensors,
    };
  }

  /**
   * Restores a state from stateDict() (tensors may come from a safetensors file). Names must match this
   * optimizer's parameters; shapes must match. Hyperparameters are restored too.
   */
  loadStateDict(state: { hyper: AdamWHyper; steps: Record<string, number>;
    tensors: Map<string, StateEntryLike> | Record<string, StateEntryLike> }): void {
    const tensors = state.tensors instanceof Map ? state.tensors : new Map(Object.entries(state.tensors));
    const own = new Map(this.params);
    const errors: string[] = [];
    const slots = new Map<string, Slot>();
    for (const [name, step] of Object.entries(state.steps)) {
      const p = own.get(name);
      if (!p) { errors.push(`unknown parameter '${name}'`); continue; }
      if (!Number.isInteger(step) || step < 1) { errors.push(`invalid step count ${step} for '${name}'`); continue; }
      const get = (key: string) => {
        const e = tensors.get(key);
        if (!e) { errors.push(`missing ${key}`); return null; }
        if (e.shape.length !== p.shape.length || e.shape.some((d, i) => d !== p.shape[i]) || e.data.length !== p.size) {
          errors.push(`size mismatch for ${key}: the state has shape [${e.shape.join(', ')}], the parameter [${p.shape.join(', ')}]`);
          return null;
        }
        return persistent(tensor(Float32Array.from(e.data), p.shape));
      };
      const m = get(`exp_avg.${name}`), v = get(`exp_avg_sq.${name}`);
      if (m && v) slots.set(name, { m, v, step });
    }
    for (const key of tensors.keys()) {
      const name = key.replace(/^exp_avg(_sq)?\./, '');
      if (!(name in state.steps)) errors.push(`unexpected tensor ${key}`);
    }
    if (errors.length) throw new Error(`AdamW.loadStateDict: ${errors.join('; ')}`);
    const h = state.hyper;
    Object.assign(this, { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay });
    this.checkHyper();
    for (const s of this.slots.values()) { s.m.dispose(); s.v.dispose(); }
    this.slots.clear();
    for (const [k, s] of slots) this.slots.set(k, s);
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: every gradient is scaled by min(1, maxNorm / (norm + 1e-6)) where norm is the
 * global L2 norm of all gradients, a one-element tensor (float32 sums), and the scale is applied as a tensor
 * (no read, no branch), so a training step needs no readback. Scaled gradients are fresh tensors (gradients
 * may share data). maxNorm = Infinity only measures. Returns the norm before clipping.
 */
export function clipGradNorm(params: ParamsLike, maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  const list = namedParams(params, 'clipGradNorm').filter(([, p]) => p.grad);
  if (list.length === 0) return scalar(0);
  const norm = sqrt(sum(concat(list.map(([, p]) => reshape(sum(square(p.grad!)), [1])))));
  if (maxNorm !== Infinity) {
    const coef = minimum(div(maxNorm, add(norm, 1e-6)), scalar(1));
    for (const [, p] of list) p.grad = mul(p.grad!, coef);
  }
  return norm;
}

/** The global L2 norm of the gradients (a one-element tensor), without clipping. */
export function gradNorm(params: ParamsLike): Tensor {
  return clipGradNorm(params, Infinity);
}

export interface WarmupCosineOptions {
  baseLr: number;
  /** Steps of linear warmup: step s < warmupSteps uses baseLr·(s+1)/warmupSteps. */
  warmupSteps: number;
  /** Total steps; the cosine runs from baseLr at warmupSteps to minLr at totalSteps (held after). */
  totalSteps: number;
  minLr?: number;
}

/**
 * Linear warmup then cosine decay, as a function of the 0-based index of the step about to be taken:
 * lr(s) = baseLr·(s+1)/W for s < W; else minLr + (baseLr − minLr)·½(1 + cos(π·min(1, (s−W)/(T−W)))).
 */
export function warmupCosine({ baseLr, warmupSteps, totalSteps, minLr = 0 }: WarmupCosineOptions): (step: number) => number {
  if (!(baseLr >= 0) || !(minLr >= 0) || minLr > baseLr) throw new RangeError(`warmupCosine: need 0 ≤ minLr ≤ baseLr, got ${minLr}, ${baseLr}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || !Number.isInteger(totalSteps) || totalSteps < warmupSteps) {
    throw new RangeError(`warmupCosine: need integers 0 ≤ warmupSteps ≤ totalSteps, got ${warmupSteps}, ${totalSteps}`);
  }
  return (step: number) => {
    if (!(step >= 0)) throw new RangeError(`warmupCosine: step must be ≥ 0, got ${step}`);
    if (step < warmupSteps) return baseLr * (step + 1) / warmupSteps;
    const span = totalSteps - warmupSteps;
    const progress = span > 0 ? Math.min(1, (step - warmupSteps) / span) : 1;
    return minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
