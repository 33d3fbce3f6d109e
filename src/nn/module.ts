/**
 * Module: a tree of named child modules and parameters, named as the equivalent torch.nn module tree
 * names them (`down.0.block.1.conv1.weight`, ModuleList indices, …), so that state dicts move between
 * this library and PyTorch unchanged.
 *
 * Parameters are leaves that optimizers update in place: a Parameter keeps one Tensor object (and one data
 * array) for its whole life; `loadStateDict`, AdamW and EMA swaps overwrite the values in that array.
 */
import { Generator, Tensor, defaultGenerator } from '../tensor/index.js';

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/** A trainable tensor: float32, requiresGrad, data overwritten in place by optimizers. */
export class Parameter extends Tensor {
  constructor(data: Float32Array, shape: readonly number[]) {
    super(data, shape, true);
  }

  /** The data array, typed (parameters are always float32). */
  get values(): Float32Array {
    return this.data as Float32Array;
  }

  /** Overwrites the values in place (the storage is kept: host array or device buffer). */
  assign(values: ArrayLike<number>): void {
    if (values.length !== this.size) {
      throw new Error(`Parameter.assign: ${values.length} values for a parameter of shape ${fmtShape(this.shape)}`);
    }
    this.write(values);
  }
}

/** One entry of a state dict: a shape and its row-major float32 values. */
export interface StateEntry {
  shape: readonly number[];
  data: Float32Array;
}

/** What loadStateDict accepts per entry (safetensors tensors fit: F32/F64 load as Float32Array). */
export interface StateEntryLike {
  shape: readonly number[];
  data: ArrayLike<number>;
}

export type StateDict = Map<string, StateEntry>;

export interface LoadStateDictOptions {
  /** Missing or unexpected names are errors (default true); shape mismatches always are. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

/** Seeded initializers in PyTorch's default families. */
export const init = {
  /** U(−bound, bound). */
  uniform(shape: readonly number[], bound: number, gen: Generator = defaultGenerator): Parameter {
    const n = shape.reduce((a, b) => a * b, 1);
    return new Parameter(gen.fillUniform(new Float32Array(n), -bound, bound), shape);
  },
  normal(shape: readonly number[], std = 1, gen: Generator = defaultGenerator): Parameter {
    const n = shape.reduce((a, b) => a * b, 1);
    return new Parameter(gen.fillNormal(new Float32Array(n), 0, std), shape);
  },
  constant(shape: readonly number[], value: number): Parameter {
    const n = shape.reduce((a, b) => a * b, 1);
    return new Parameter(new Float32Array(n).fill(value), shape);
  },
  /**
   * torch.nn.init.kaiming_uniform_(w, a=√5) — the default for Linear and Conv weights:
   * bound = gain·√(3/fan_in) with gain = √(2/(1+a²)), i.e. bound = 1/√fan_in.
   */
  kaimingUniform(shape: readonly number[], gen: Generator = defaultGenerator, a = Math.sqrt(5)): Parameter {
    const fanIn = shape.slice(1).reduce((x, y) => x * y, 1);
    const gain = Math.sqrt(2 / (1 + a * a));
    return init.uniform(shape, gain * Math.sqrt(3 / fanIn), gen);
  },
};

/**
 * Base class. Subclasses register children and parameters in their constructor, in the order PyTorch's
 * transcription assigns them (the order only affects iteration, never names).
 */
export class Module {
  /** Training mode (dropout active); `train()` / `eval()` set it on the whole tree. */
  training = true;
  private readonly _params = new Map<string, Parameter | null>();
  private readonly _modules = new Map<string, Module>();

  /** Registers a child module under `name` and returns it. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    checkName(name, this._modules.has(name) || this._params.has(name));
    this._modules.set(name, module);
    return module;
  }

  /** Registers a parameter (or an absent optional one, null) under `name` and returns it. */
  protected registerParameter<P extends Parameter | null>(name: string, p: P): P {
    checkName(name, this._modules.has(name) || this._params.has(name));
    this._params.set(name, p);
    return p;
  }

  /** Direct children, by name, in registration order. */
  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this._modules.entries();
  }

  /** Every module of the tree (this one first, name ''), depth first, with dotted names. */
  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this._modules) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** Every parameter with its dotted PyTorch-style name: own parameters first, then children in order. */
  *namedParameters(prefix = ''): IterableIterator<[string, Parameter]> {
    for (const [name, p] of this._params) if (p) yield [prefix ? `${prefix}.${name}` : name, p];
    for (const [name, m] of this._modules) yield* m.namedParameters(prefix ? `${prefix}.${name}` : name);
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  numParameters(): number {
    let n = 0;
    for (const [, p] of this.namedParameters()) n += p.size;
    return n;
  }

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears `.grad` on every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Name → {shape, data}; the data arrays are copies (later training does not change them). */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, p] of this.namedParameters()) out.set(name, { shape: [...p.shape], data: p.values.slice() });
    return out;
  }

  /**
   * Copies values into the parameters (in place). Shape mismatches are errors naming the parameter and
   * both shapes; with `strict` (default), so are missing and unexpected names. Nothing is written unless
   * every check passes.
   */
  loadStateDict(state: Map<string, StateEntryLike> | Record<string, StateEntryLike>,
    { strict = true }: LoadStateDictOptions = {}): LoadStateDictResult {
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const own = new Map(this.namedParameters());
    const missing = [...own.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !own.has(k));
    const errors: string[] = [];
    for (const [name, p] of own) {
      const e = entries.get(name);
      if (!e) continue;
      const shapeOk = e.shape.length === p.shape.length && e.shape.every((d, i) => d === p.shape[i]);
      if (!shapeOk) {
        errors.push(`size mismatch for ${name}: the state dict has shape ${fmtShape(e.shape)}, the model has ${fmtShape(p.shape)}`);
      } else if (e.data.length !== p.size) {
        errors.push(`${name}: ${e.data.length} values for shape ${fmtShape(e.shape)}`);
      }
    }
    if (strict && missing.length) errors.push(`missing key(s): ${missing.join(', ')}`);
    if (strict && unexpected.length) errors.push(`unexpected key(s): ${unexpected.join(', ')}`);
    if (errors.length) throw new Error(`loadStateDict (${this.constructor.name}): ${errors.join('; ')}`);
    for (const [name, p] of own) {
      const e = entries.get(name);
      if (e) p.assign(e.data);
    }
    return { missing, unexpected };
  }
}

function checkName(name: string, taken: boolean): void {
  if (!name || name.includes('.')) throw new Error(`Module: invalid attribute name '${name}' (non-empty, no dots)`);
  if (taken) throw new Error(`Module: attribute '${name}' is already registered`);
}

/** A module mapping one tensor to one tensor (what Sequential chains). */
export interface UnaryModule extends Module {
  forward(x: Tensor): Tensor;
}
