/**
 * Tensor: dense row-major data on a backend, with reverse-mode autograd recorded as the program runs.
 *
 * Memory model: CPU data lives in typed arrays owned by the garbage collector; `dispose()` drops a
 * tensor's data at once (and `backward()` drops the graph's saved tensors), so large intermediates
 * need not wait for a collection.
 */
import type { Backend } from '../backends/backend.js';
import { getBackend } from '../backends/index.js';
import { Generator, defaultGenerator } from './random.js';
import { ShapeError, checkShape, fmt, sizeOf, stridesOf } from './shape.js';

export type DType = 'float32' | 'int32';
export type TensorData = Float32Array | Int32Array;

/** A recorded operation: its inputs and how to turn the output's gradient into theirs. */
interface Node {
  op: string;
  inputs: Tensor[];
  backward: (grad: Tensor) => (Tensor | null)[];
}

let gradEnabled = true;

/** Runs fn without recording operations for autograd (sampling, evaluation, optimizer steps). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** Set on outputs of recorded operations; cleared by backward(). */
  node: Node | null = null;
  private _data: TensorData | null;

  constructor(data: TensorData, shape: readonly number[], requiresGrad = false) {
    checkShape('tensor', shape);
    if (data.length !== sizeOf(shape)) {
      throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmt(shape)}`);
    }
    this._data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof Int32Array ? 'int32' : 'float32';
    if (requiresGrad && this.dtype !== 'float32') throw new Error('tensor: only float32 tensors can require gradients');
    this.requiresGrad = requiresGrad;
  }

  /** The dense data (do not mutate a tensor that takes part in a graph). */
  get data(): TensorData {
    if (!this._data) throw new Error(`tensor ${fmt(this.shape)} was disposed`);
    return this._data;
  }

  /** The data as float32, or an error naming the op for int32 tensors. */
  f32(op: string): Float32Array {
    const d = this.data;
    if (!(d instanceof Float32Array)) throw new TypeError(`${op}: expected a float32 tensor, got int32 ${fmt(this.shape)}`);
    return d;
  }

  get size(): number {
    return this._data ? this._data.length : sizeOf(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this._data === null;
  }

  /** Releases the data now; any later use of this tensor throws. */
  dispose(): void {
    this._data = null;
    this.node = null;
    this.grad = null;
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: tensor of shape ${fmt(this.shape)} has ${this.size} elements, not 1`);
    return this.data[0];
  }

  /** A copy outside any graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }

  /**
   * Reverse-mode differentiation from this tensor. Without `grad` the tensor must hold one element.
   * Gradients accumulate (+=) on leaves that require them; the graph is released afterwards.
   */
  backward(grad?: Tensor, { retainGraph = false }: { retainGraph?: boolean } = {}): void {
    if (!grad) {
      if (this.size !== 1) throw new ShapeError(`backward: output of shape ${fmt(this.shape)} is not a scalar; pass a gradient`);
      grad = new Tensor(new Float32Array([1]), this.shape);
    } else if (grad.shape.join() !== this.shape.join()) {
      throw new ShapeError(`backward: gradient shape ${fmt(grad.shape)} does not match output shape ${fmt(this.shape)}`);
    }
    const order = topoOrder(this);
    const grads = new Map<Tensor, Tensor>([[this, grad]]);
    noGrad(() => {
      for (const t of order) {
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        if (!t.node) {
          // A leaf's gradient gets its own storage: rules may hand one tensor to several inputs (add) or
          // share data with a view (reshape), and callers may modify .grad in place.
          if (t.requiresGrad) t.grad = t.grad ? accumulate(t.grad, g) : new Tensor(g.data.slice(), g.shape);
          continue;
        }
        const inputGrads = t.node.backward(g);
        t.node.inputs.forEach((inp, i) => {
          const gi = inputGrads[i];
          if (!gi || !inp.requiresGrad) return;
          const prev = grads.get(inp);
          grads.set(inp, prev ? accumulate(prev, gi) : gi);
        });
        if (!retainGraph) t.node = null;
      }
    });
  }
}

function accumulate(a: Tensor, b: Tensor): Tensor {
  const st = stridesOf(a.shape);
  return new Tensor(getBackend().binary('add', a.f32('backward'), st, b.f32('backward'), st, [...a.shape]), a.shape);
}

/** Output first, each tensor before its inputs (iterative DFS: UNet graphs are deep). */
function topoOrder(root: Tensor): Tensor[] {
  const post: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) { seen.add(c); stack.push([c, 0]); }
    } else {
      stack.pop();
      post.push(t);
    }
  }
  return post.reverse();
}

/**
 * Wraps a kernel result as the output of a differentiable op. Records the op only when grad mode is on
 * and some input requires a gradient.
 */
export function recordOp(op: string, data: TensorData, shape: readonly number[], inputs: Tensor[],
  backward: (grad: Tensor) => (Tensor | null)[]): Tensor {
  const needs = gradEnabled && inputs.some((t) => t.requiresGrad);
  const out = new Tensor(data, shape, needs);
  if (needs) out.node = { op, inputs, backward };
  return out;
}

export function backend(): Backend {
  return getBackend();
}

// ---- creation ----

export interface TensorOptions { requiresGrad?: boolean; dtype?: DType }

/** A tensor from nested-free data: a typed array or plain numbers, with a shape (default 1-D). */
export function tensor(values: ArrayLike<number> | TensorData, shape?: readonly number[], opts: TensorOptions = {}): Tensor {
  const sh = shape ?? [values.length];
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'int32' : 'float32');
  const data = dtype === 'int32'
    ? (values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>))
    : (values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>));
  return new Tensor(data, sh, opts.requiresGrad ?? false);
}

export function scalar(value: number): Tensor {
  return new Tensor(new Float32Array([value]), []);
}

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  checkShape('zeros', shape);
  const n = sizeOf(shape);
  return new Tensor(opts.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n), shape, opts.requiresGrad ?? false);
}

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const t = zeros(shape, opts);
  t.data.fill(value);
  return t;
}

export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function arange(n: number, opts: TensorOptions = {}): Tensor {
  const t = zeros([n], opts);
  for (let i = 0; i < n; i++) t.data[i] = i;
  return t;
}

/** Standard normal samples from `gen` (identical on every backend for the same seed). */
export function randn(shape: readonly number[], gen: Generator = defaultGenerator, opts: TensorOptions = {}): Tensor {
  checkShape('randn', shape);
  return new Tensor(gen.fillNormal(new Float32Array(sizeOf(shape))), shape, opts.requiresGrad ?? false);
}

/** Uniform samples in [lo, hi). */
export function rand(shape: readonly number[], gen: Generator = defaultGenerator, lo = 0, hi = 1, opts: TensorOptions = {}): Tensor {
  checkShape('rand', shape);
  return new Tensor(gen.fillUniform(new Float32Array(sizeOf(shape)), lo, hi), shape, opts.requiresGrad ?? false);
}
