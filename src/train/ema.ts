/**
 * Exponential moving average of parameters, for sampling (DDPM/ADM evaluate their EMA weights).
 *
 *   shadow ← d·shadow + (1 − d)·param   after each optimizer step
 *
 * with d = decay, or with warmup d = min(decay, (1 + n)/(10 + n)) after n previous updates (TensorFlow's
 * ExponentialMovingAverage num_updates rule), so early shadows are not dominated by the random init.
 * Shadow names are the model's parameter names: `stateDict().tensors` loads straight into a model.
 */
import type { StateEntry, StateEntryLike } from '../nn/module.js';
import { type Tensor, assign, lerpInPlace, noGrad, scope } from '../tensor/index.js';
import { namedParams, persistent, readCopy, type ParamsLike } from './optim.js';

export interface EMAOptions {
  decay?: number;
  warmup?: boolean;
}

export interface EMAState {
  decay: number;
  warmup: boolean;
  numUpdates: number;
  tensors: Map<string, StateEntry>;
}

export class EMA {
  decay: number;
  warmup: boolean;
  numUpdates = 0;
  readonly params: readonly [string, Tensor][];
  /** Held outside any scope, updated in place (on the device, on a device backend). */
  private readonly shadow: Tensor[];
  private swapped = false;

  /** The shadow starts as a copy of the current parameter values. */
  constructor(params: ParamsLike, { decay = 0.9999, warmup = false }: EMAOptions = {}) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`EMA: decay must be in [0, 1], got ${decay}`);
    this.decay = decay;
    this.warmup = warmup;
    this.params = namedParams(params, 'EMA');
    this.shadow = noGrad(() => this.params.map(([, p]) => persistent(p.detach().clone())));
  }

  /** The decay the next update will use. */
  currentDecay(): number {
    return this.warmup ? Math.min(this.decay, (1 + this.numUpdates) / (10 + this.numUpdates)) : this.decay;
  }

  /** Moves the shadow toward the current parameters (call after each optimizer step). */
  update(): void {
    if (this.swapped) throw new Error('EMA.update: the EMA weights are swapped into the model; swap back first');
    const d = this.currentDecay(), a = 1 - d;
    this.params.forEach(([, p], i) => lerpInPlace(this.shadow[i], p, a));
    this.numUpdates++;
  }

  /**
   * Exchanges the model's values with the shadow's, in place (the parameter arrays are kept). Call once to
   * put the EMA weights in the model, again to put the training weights back.
   */
  swap(): void {
    scope(() => noGrad(() => this.params.forEach(([, p], i) => {
      const tmp = p.detach().clone();
      assign(p, this.shadow[i]);
      assign(this.shadow[i], tmp);
    })));
    this.swapped = !this.swapped;
  }

  /** True while the EMA weights are in the model. */
  get isSwapped(): boolean {
    return this.swapped;
  }

  /** Runs fn with the EMA weights in the model and swaps back afterwards (also after a throw or a rejection). */
  withWeights<T>(fn: () => T): T {
    this.swap();
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.swap();
      throw e;
    }
    if (result instanceof Promise) {
      return result.finally(() => this.swap()) as T;
    }
    this.swap();
    return result;
  }

  /** Restarts the average at the parameters' current values (after loading weights into a fresh model). */
  reset(): void {
    if (this.swapped) throw new Error('EMA.reset: the EMA weights are swapped into the model; swap back first');
    noGrad(() => this.params.forEach(([, p], i) => assign(this.shadow[i], p.detach())));
    this.numUpdates = 0;
  }

  /** Writes the EMA weights into the model for good (e.g. before exporting). */
  copyTo(): void {
    if (this.swapped) throw new Error('EMA.copyTo: the EMA weights are swapped into the model; swap back first');
    noGrad(() => this.params.forEach(([, p], i) => assign(p, this.shadow[i])));
  }

  /** A copy of the state; `tensors` are named as the model's parameters (read back from a device; at once on the CPU). */
  async stateDict(): Promise<EMAState> {
    const tensors = new Map<string, StateEntry>();
    for (const [i, [name, p]] of this.params.entries()) {
      tensors.set(name, { shape: [...p.shape], data: await readCopy(this.swapped ? p : this.shadow[i]) });
    }
    return { decay: this.decay, warmup: this.warmup, numUpdates: this.numUpdates, tensors };
  }

  loadStateDict(state: { decay: number; warmup: boolean; numUpdates: number;
    tensors: Map<string, StateEntryLike> | Record<string, StateEntryLike> }): void {
    if (this.swapped) throw new Error('EMA.loadStateDict: the EMA weights are swapped into the model; swap back first');
    const tensors = state.tensors instanceof Map ? state.tensors : new Map(Object.entries(state.tensors));
    const errors: string[] = [];
    const own = new Set(this.params.map(([n]) => n));
    this.params.forEach(([name, p]) => {
      const e = tensors.get(name);
      if (!e) errors.push(`missing ${name}`);
      else if (e.shape.length !== p.shape.length || e.shape.some((d, k) => d !== p.shape[k]) || e.data.length !== p.size) {
        errors.push(`size mismatch for ${name}: the state has shape [${e.shape.join(', ')}], the parameter [${p.shape.join(', ')}]`);
      }
    });
    for (const k of tensors.keys()) if (!own.has(k)) errors.push(`unexpected ${k}`);
    if (!Number.isInteger(state.numUpdates) || state.numUpdates < 0) errors.push(`invalid numUpdates ${state.numUpdates}`);
    if (!(state.decay >= 0 && state.decay <= 1)) errors.push(`invalid decay ${state.decay}`);
    if (errors.length) throw new Error(`EMA.loadStateDict: ${errors.join('; ')}`);
    this.params.forEach(([name], i) => this.shadow[i].write(tensors.get(name)!.data));
    this.decay = state.decay;
    this.warmup = !!state.warmup;
    this.numUpdates = state.numUpdates;
  }
}
