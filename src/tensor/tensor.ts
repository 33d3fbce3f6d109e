/**
 * Tensor: dense row-major data on a backend, with reverse-mode autograd recorded as the program runs.
 *
 * Memory model: CPU data lives in typed arrays owned by the garbage collector; `dispose()` drops a
 * tensor's data at once (and `backward()` drops the graph's saved tensors), so large intermediates
 * need not wait for a collection. Where the engine knows an array is dead it frees it at once (`freeData`;
 * the native addon detaches what its kernels made): `backward()` frees each gradient it has consumed, and
 * module code frees the intermediates it made (`freeAfterUse`), letting cheap outputs be rebuilt when a
 * gradient rule reads them (`recomputable`: a group norm's output from its input). On a device backend
 * (WebGPU) float data lives in pooled device buffers:
 * `dispose()` returns the buffer to the pool at once, `scope(fn)` disposes everything fn created except what
 * it returns (or `keep`s), and buffers of tensors that are merely dropped return when the collector runs.
 *
 * Reading: `.data` is synchronous and works wherever the values are on the host (CPU backends; device
 * tensors uploaded from host data and not modified since); `await tensor.read()` works everywhere.
 * Host float data is moved to a device backend on first use by a kernel (`storage()`); int32 tensors
 * (labels, indices) always stay on the host.
 */
import { checkCancelled } from './cancel.js';
import { type DeviceArray, type Engine, type FStore, isDeviceArray } from '../backends/backend.js';
import { currentBackendIsDevice, getBackend } from '../backends/index.js';
import { type ScopeFrame, popFrame, pushFrame, topFrame } from '../backends/memory.js';
import { Generator, defaultGenerator } from './random.js';
import { ShapeError, checkShape, fmt, sizeOf } from './shape.js';

export type DType = 'float32' | 'int32';
export type TensorData = Float32Array | Int32Array;
/** What a tensor holds: host data, or float data on a device backend. */
export type Storage = TensorData | DeviceArray;

/**
 * A recorded operation: its inputs' places in the graph (null: the input needed no gradient when the op ran)
 * and how to turn the output's gradient into theirs.
 */
interface Node {
  op: string;
  inputs: (GradRef | null)[];
  backward: (grad: Tensor) => (Tensor | null)[];
  /** Tensors freed once this op's rule (and the others listed with it) has run (`freeAfterUse`). */
  release?: { left: number; inputs: Tensor[] }[];
}

/**
 * A tensor's place in the autograd graph, apart from its data. Graphs link these, not tensors, so that an
 * intermediate's values live only as long as the program or a gradient rule that reads them holds them (a
 * convolution's output that only feeds an addition is freed at once, not when the graph is). A leaf's ref
 * holds the leaf, whose .grad backward() sets.
 */
class GradRef {
  node: Node | null = null;
  constructor(readonly leaf: Tensor | null) {}

  get requiresGrad(): boolean {
    return this.leaf ? this.leaf.requiresGrad : true;
  }
}

let gradEnabled = true;

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn without recording operations for autograd (sampling, evaluation, optimizer steps). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn recording operations again, inside a `noGrad` (a gradient rule that rebuilds a graph: `checkpoint`). */
export function withGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  private _data: Storage | null;
  private _ref: GradRef | null = null;
  /** Rebuilds the data after `freeData` (set by ops whose output is cheap to recompute; see `recomputable`). */
  private _recompute: (() => Storage) | null = null;

  constructor(data: Storage, shape: readonly number[], requiresGrad = false) {
    checkShape('tensor', shape);
    if (data.length !== sizeOf(shape)) {
      throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmt(shape)}`);
    }
    if (isDeviceArray(data)) {
      if (data.released) throw new Error(`tensor ${fmt(shape)}: its ${data.device} buffer was already released (disposed)`);
      data.retain();
    }
    this._data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof Int32Array ? 'int32' : 'float32';
    if (requiresGrad && this.dtype !== 'float32') throw new Error('tensor: only float32 tensors can require gradients');
    this.requiresGrad = requiresGrad;
    // Recorded where buffers are pooled (a device tensor, or any tensor while a device backend runs: host data
    // is uploaded on first use). On CPU backends a host array is freed by the collector once nothing holds it;
    // a frame holding it to the scope's end would keep a whole training step's intermediates alive at once
    // (the default run's peak RSS was 1.07 GB instead of 0.74 GB).
    if (isDeviceArray(data) || currentBackendIsDevice()) topFrame<Tensor>()?.tensors.push(this);
  }

  /** Set on outputs of recorded operations; cleared by backward(). */
  get node(): Node | null {
    return this._ref?.node ?? null;
  }

  set node(n: Node | null) {
    if (n) (this._ref = new GradRef(null)).node = n;
    else if (this._ref) this._ref.node = null;
  }

  /** This tensor's place in the graph, as an input of an op: its node's, or (no node) a leaf's. */
  gradRef(): GradRef {
    if (!this._ref || (!this._ref.node && !this._ref.leaf)) this._ref = new GradRef(this);
    return this._ref;
  }

  private live(): Storage {
    if (this._data) return this._data;
    if (!this._recompute) throw new Error(`tensor ${fmt(this.shape)} was disposed`);
    const d = this._recompute();
    if (isDeviceArray(d)) d.retain();
    this._data = d;
    rematerialized?.push(this);
    return d;
  }

  /**
   * Gives the storage back now rather than at the next collection: a native kernel output is freed at once,
   * a device array loses this tensor's reference; host arrays the native addon did not make (and everything on
   * the js backend) are left to the collector. Returns whether the data went. A tensor made by `recomputable`
   * rebuilds its data when read again; any other is then disposed. For engine and module code that knows
   * nothing reads the tensor later (an intermediate it made and consumed).
   */
  freeData(): boolean {
    const d = this._data;
    if (!d) return false;
    if (isDeviceArray(d)) d.release();
    else if (!(d instanceof Float32Array && getBackend().free?.(d))) return false;
    this._data = null;  // the node stays: the graph reaches this op through it
    return true;
  }

  /**
   * The dense data on the host (do not mutate a tensor that takes part in a graph). Device tensors have it
   * while their values are known on the host, or when the device reads synchronously (wasm); otherwise this
   * throws: use `await tensor.read()`.
   */
  get data(): TensorData {
    const d = this.live();
    if (!isDeviceArray(d)) return d;
    if (d.host) return d.host;
    if (d.readSync) return d.readSync();
    throw new Error(`tensor ${fmt(this.shape)} lives on ${d.device}: read it with \`await tensor.read()\``);
  }

  /** The values, on any backend (a copy from the device, or the host array itself). */
  async read(): Promise<TensorData> {
    const d = this.live();
    return isDeviceArray(d) ? (d.host ?? d.read()) : d;
  }

  /** The storage as it is, shared (reshape, detach): no move, no copy. */
  shareStorage(): Storage {
    return this.live();
  }

  /** True when the data is in a device buffer. */
  get onDevice(): boolean {
    return isDeviceArray(this._data);
  }

  /**
   * The float storage for a kernel of backend `be` (default: the current one). Host data used on a device
   * backend moves there now, once (the tensor keeps a host copy until a kernel modifies it in place).
   */
  storage(op: string, be: Engine = getBackend()): FStore {
    const d = this.live();
    if (d instanceof Int32Array) throw new TypeError(`${op}: expected a float32 tensor, got int32 ${fmt(this.shape)}`);
    if (d instanceof Float32Array) {
      if (!be.device) return d;
      const s = be.fromHost(d);
      if (isDeviceArray(s)) { s.retain(); this._data = s; }
      return s;
    }
    if (be.device && be.name === d.device) return d;
    if (d.host) return d.host;
    throw new Error(`${op}: tensor ${fmt(this.shape)} lives on ${d.device} but the backend is ${be.name}; read it first (await tensor.read())`);
  }

  /** Overwrites the values in place, keeping the storage (parameters, optimizer state). */
  write(values: ArrayLike<number>): void {
    const d = this.live();
    if (values.length !== this.size) throw new ShapeError(`write: ${values.length} values for a tensor of shape ${fmt(this.shape)}`);
    if (isDeviceArray(d)) {
      const be = getBackend();
      be.stridedCopy(be.fromHost(Float32Array.from(values)), 0, [1], [this.size], d, 0, [1], false);
    } else d.set(values);
  }

  /** The data as float32, or an error naming the op for int32 tensors. */
  f32(op: string): Float32Array {
    const d = this.data;
    if (!(d instanceof Float32Array)) throw new TypeError(`${op}: expected a float32 tensor, got int32 ${fmt(this.shape)}`);
    return d;
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this._data === null && this._recompute === null;
  }

  /** Releases the data now; any later use of this tensor throws. */
  dispose(): void {
    if (isDeviceArray(this._data)) this._data.release();
    this._data = null;
    this._recompute = null;
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

  /** The same data outside any graph. */
  detach(): Tensor {
    return new Tensor(this.shareStorage(), this.shape);
  }

  clone(): Tensor {
    const d = this.live();
    if (!isDeviceArray(d)) return new Tensor(d.slice(), this.shape);
    const be = getBackend(), out = be.empty(d.length);
    if (d.length) be.stridedCopy(d, 0, [1], [d.length], out, 0, [1], false);
    if (isDeviceArray(out)) out.host = d.host;
    return new Tensor(out, this.shape);
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
    const root = this.gradRef();
    const order = topoOrder(root);
    const grads = new Map<GradRef, Tensor>([[root, grad]]);
    // Gradients are freed as soon as they are consumed (not at the next collection), unless another pending
    // gradient shares their storage (rules hand `g` itself or a view of it to their inputs): counts per storage.
    // (A tensor's key is taken when it is first held: host data moved to a device later keeps its key.)
    const holders = new Map<object, number>(), keys = new Map<Tensor, object | null>();
    const keyOf = (t: Tensor) => { let k = keys.get(t); if (k === undefined) keys.set(t, k = storageKey(t)); return k; };
    const hold = (t: Tensor) => { const k = keyOf(t); if (k) holders.set(k, (holders.get(k) ?? 0) + 1); };
    const drop = (t: Tensor) => {
      const k = keyOf(t);
      if (!k) return;
      const n = (holders.get(k) ?? 0) - 1;
      if (n > 0) { holders.set(k, n); return; }
      holders.delete(k);
      if (k !== seedKey) t.freeData();
    };
    const seedKey = keyOf(grad);
    hold(grad);
    const prevRemat = rematerialized;
    noGrad(() => {
      try {
        for (const r of order) {
          const g = grads.get(r);
          if (!g) continue;
          grads.delete(r);
          if (!r.node) {
            // A leaf's gradient gets its own storage: rules may hand one tensor to several inputs (add) or
            // share data with a view (reshape), and callers may modify .grad in place.
            const t = r.leaf;
            if (t?.requiresGrad) t.grad = t.grad ? accumulate(t.grad, g) : g.clone();
            drop(g);
            continue;
          }
          rematerialized = [];
          const inputGrads = r.node.backward(g);
          r.node.inputs.forEach((inp, i) => {
            const gi = inputGrads[i];
            if (!gi || !inp?.requiresGrad) return;
            const prev = grads.get(inp);
            if (!prev) { grads.set(inp, gi); hold(gi); return; }
            const sum = accumulate(prev, gi);
            grads.set(inp, sum);
            hold(sum);
            drop(prev);
            hold(gi);  // gi goes unless a pending gradient shares its storage
            drop(gi);
          });
          drop(g);
          // Data rebuilt for this rule (a recomputable intermediate) goes again; a later reader rebuilds it.
          for (const t of rematerialized) t.freeData();
          // Dropping the node drops its rule's saved tensors: the collector can take them as backward goes;
          // those the forward marked as read by this rule alone go now.
          if (!retainGraph) {
            for (const p of r.node.release ?? []) if (--p.left === 0) for (const t of p.inputs) t.freeData();
            r.node = null;
          }
        }
      } finally {
        rematerialized = prevRemat;
      }
    });
  }
}

/** What identifies a float tensor's storage across views (null: int32 data). */
function storageKey(t: Tensor): object | null {
  const d = t.shareStorage();
  return d instanceof Int32Array ? null : isDeviceArray(d) ? d : d.buffer;
}

/**
 * Frees `inputs` once the ops that made `outs` no longer need them: at once when none recorded a gradient
 * rule (inference), else once each recorded rule has run in `backward`. For module code that made the inputs
 * (or was handed them to own) and knows that nothing else reads them.
 */
export function freeAfterUse(outs: Tensor | Tensor[], ...inputs: Tensor[]): void {
  const nodes = (Array.isArray(outs) ? outs : [outs]).map((o) => o.node).filter((n): n is Node => n !== null);
  if (!nodes.length) { for (const t of inputs) t.freeData(); return; }
  const pending = { left: nodes.length, inputs };
  for (const n of nodes) (n.release ??= []).push(pending);
}

/** Tensors whose data `live()` rebuilt during the current gradient rule (null outside backward). */
let rematerialized: Tensor[] | null = null;

/**
 * Marks `t` (an op's output) as rebuildable by `fn` from what the op's gradient rule keeps anyway, so that
 * `freeData` can drop it after its consumer ran and a gradient rule that reads it recomputes it (activation
 * memory traded for a cheap kernel: a group norm's output from its input and statistics).
 */
export function recomputable(t: Tensor, fn: () => Storage): Tensor {
  (t as unknown as { _recompute: (() => Storage) | null })._recompute = fn;
  return t;
}

export interface CheckpointOptions {
  /** Parameters fn reads besides its inputs: their gradients accumulate when the block is run again. */
  params?: readonly Tensor[];
  /** Generators fn draws from (dropout): rewound for the second run, so that it draws the same. */
  generators?: readonly { getState(): (number | null)[]; setState(s: readonly (number | null)[]): void }[];
}

/**
 * Activation checkpointing (torch.utils.checkpoint): fn(...inputs) runs without recording, so none of its
 * intermediates are kept for backward; its gradient rule runs it again from the inputs, recording, and
 * differentiates that. Memory of a block's activations traded for a second forward of it. fn must compute the
 * same thing twice: the same ops on the same inputs (generators it draws from are given, and rewound), and it
 * must not free its inputs. Without gradients (or with none required) it is fn(...inputs).
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], { params = [], generators = [] }: CheckpointOptions = {}): Tensor {
  const all = [...inputs, ...params];
  if (!gradEnabled || !all.some((t) => t.requiresGrad)) return fn(...inputs);
  const states = generators.map((g) => g.getState());
  const out = noGrad(() => fn(...inputs));
  return recordOp('checkpoint', out.shareStorage(), out.shape, all, (gy) => {
    const xs = inputs.map((t) => { const d = t.detach(); d.requiresGrad = t.requiresGrad; return d; });
    const now = generators.map((g) => g.getState());
    generators.forEach((g, i) => g.setState(states[i]));
    let y: Tensor;
    try {
      y = withGrad(() => fn(...xs));
    } finally {
      generators.forEach((g, i) => g.setState(now[i]));
    }
    // the parameters' gradients accumulate on them here; the inputs' go back to the enclosing backward
    if (y.node) y.backward(gy);
    return [...xs.map((d) => (d.requiresGrad ? d.grad : null)), ...params.map(() => null)];
  });
}

function accumulate(a: Tensor, b: Tensor): Tensor {
  // Same shape, both dense: one flat run (what mergeDims would make of it).
  return new Tensor(getBackend().binary('add', a.storage('backward'), [1], b.storage('backward'), [1], [a.size]), a.shape);
}

/** Output first, each ref before its inputs (iterative DFS: UNet graphs are deep). */
function topoOrder(root: GradRef): GradRef[] {
  const post: GradRef[] = [];
  const seen = new Set<GradRef>();
  const stack: [GradRef, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [r, i] = top;
    const inputs = r.node ? r.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c && c.requiresGrad && !seen.has(c)) { seen.add(c); stack.push([c, 0]); }
    } else {
      stack.pop();
      post.push(r);
    }
  }
  return post.reverse();
}

/**
 * Wraps a kernel result as the output of a differentiable op. Records the op only when grad mode is on
 * and some input requires a gradient. The graph keeps the inputs' places, not their data: `backward` must
 * capture what it reads (and only that: whatever it captures lives until the op's backward has run).
 */
export function recordOp(op: string, data: Storage, shape: readonly number[], inputs: Tensor[],
  backward: (grad: Tensor) => (Tensor | null)[]): Tensor {
  const needs = gradEnabled && inputs.some((t) => t.requiresGrad);
  const out = new Tensor(data, shape, needs);
  if (needs) out.node = { op, inputs: inputs.map((t) => (t.requiresGrad ? t.gradRef() : null)), backward };
  return out;
}

/** The backend for the next kernel call (the one place ops reach kernels: where cancellation is checked). */
export function backend(): Engine {
  checkCancelled();
  return getBackend();
}

/**
 * Runs fn and then disposes every tensor created during it on a device backend, and releases the device buffers its kernels
 * allocated, except the tensors in its result (a tensor, or an array / plain object / Map of them) and those
 * passed to `keep`. Kept tensors belong to the enclosing scope, if any. Scopes matter on device backends,
 * where memory is pooled; on CPU backends host arrays are left to the garbage collector, which frees each as
 * soon as nothing holds it. Gradients set by `backward()` inside a scope are disposed with it (on a device):
 * step the optimizer inside too.
 */
export function scope<T>(fn: () => T): T {
  const frame = pushFrame<Tensor>();
  let result: T;
  try {
    result = fn();
  } finally {
    popFrame(frame);
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  closeFrame(frame, kept);
  return result;
}

/**
 * Scopes for a loop whose steps carry a few tensors into the next ones (samplers keep x and the previous
 * x̂_0): `step(fn)` runs one step in its own scope, and the scope of step i closes when step i + lag ends
 * (tensors created by step i are disposed then, unless kept). `finish(result)` closes the rest, keeping
 * `result`. Anything the caller holds longer must be copied (clone / read) within `lag` steps.
 */
export class RollingScope {
  private readonly open: ScopeFrame<Tensor>[] = [];

  constructor(readonly lag = 2) {}

  step<T>(fn: () => T): T {
    const frame = pushFrame<Tensor>();
    try {
      return fn();
    } finally {
      popFrame(frame);
      this.open.push(frame);
      while (this.open.length > this.lag) closeFrame(this.open.shift()!, new Set());
    }
  }

  finish<T>(result: T): T {
    const kept = new Set<Tensor>();
    collectTensors(result, kept);
    while (this.open.length) closeFrame(this.open.shift()!, kept);
    return result;
  }
}

/** The tensor with its values on the host (itself when they are there; a device tensor is read and disposed). */
export async function toHost(t: Tensor): Promise<Tensor> {
  if (!t.onDevice) return t;
  const host = new Tensor(await t.read(), t.shape);
  t.dispose();
  return host;
}

/** Marks tensors to outlive the enclosing scope (no-op outside scopes). */
export function keep<T extends Tensor>(t: T): T {
  const f = topFrame<Tensor>();
  if (f) {
    const i = f.tensors.lastIndexOf(t);
    if (i >= 0) f.tensors.splice(i, 1);
  }
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (v instanceof Tensor) { out.add(v); return; }
  if (depth > 2 || typeof v !== 'object' || v === null) return;
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collectTensors(x, out, depth + 1);
}

function closeFrame(frame: ScopeFrame<Tensor>, kept: Set<Tensor>): void {
  const outer = topFrame<Tensor>();
  for (const t of frame.tensors) {
    if (kept.has(t)) outer?.tensors.push(t);
    else t.dispose();
  }
  // Arrays no live tensor holds (norm statistics, partial sums, …) go back to the pool now.
  for (const a of frame.arrays) {
    if (!a.released && a.refs === 0) a.release();
    else if (!a.released) outer?.arrays.push(a);
  }
}

// ---- creation ----

export interface TensorOptions { requiresGrad?: boolean; dtype?: DType }

/** The options of a creation function, checked: a misspelt dtype is an error, not float32. */
function checked(op: string, opts: unknown): TensorOptions {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`${op}: options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  const o = opts as TensorOptions;
  if (o.dtype !== undefined && o.dtype !== 'float32' && o.dtype !== 'int32') throw new TypeError(`${op}: dtype must be 'float32' or 'int32', got ${JSON.stringify(o.dtype)}`);
  if (o.requiresGrad !== undefined && typeof o.requiresGrad !== 'boolean') throw new TypeError(`${op}: requiresGrad must be a boolean, got ${typeof o.requiresGrad}`);
  return o;
}

function checkNumber(op: string, name: string, v: unknown): void {
  if (typeof v !== 'number') throw new TypeError(`${op}: ${name} must be a number, got ${v === null ? 'null' : typeof v}`);
}

/** A tensor from nested-free data: a typed array or plain numbers, with a shape (default 1-D). */
export function tensor(values: ArrayLike<number> | TensorData, shape?: readonly number[], opts: TensorOptions = {}): Tensor {
  opts = checked('tensor', opts);
  if (values === null || typeof values !== 'object' || typeof (values as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`tensor: values must be an array or a typed array, got ${values === null ? 'null' : typeof values}`);
  }
  const sh = shape ?? [values.length];
  checkShape('tensor', sh);
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'int32' : 'float32');
  const data = dtype === 'int32'
    ? (values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>))
    : (values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>));
  return new Tensor(data, sh, opts.requiresGrad ?? false);
}

export function scalar(value: number): Tensor {
  checkNumber('scalar', 'value', value);
  return new Tensor(new Float32Array([value]), []);
}

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  opts = checked('zeros', opts);
  checkShape('zeros', shape);
  const n = sizeOf(shape);
  return new Tensor(opts.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n), shape, opts.requiresGrad ?? false);
}

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  opts = checked('full', opts);
  checkShape('full', shape);
  checkNumber('full', 'value', value);
  const n = sizeOf(shape);
  const data = opts.dtype === 'int32' ? new Int32Array(n).fill(value) : new Float32Array(n).fill(value);
  return new Tensor(data, shape, opts.requiresGrad ?? false);
}

export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function arange(n: number, opts: TensorOptions = {}): Tensor {
  opts = checked('arange', opts);
  checkShape('arange', [n]);
  const data = opts.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = i;
  return new Tensor(data, [n], opts.requiresGrad ?? false);
}

/** Standard normal samples from `gen` (identical on every backend for the same seed). */
export function randn(shape: readonly number[], gen: Generator = defaultGenerator, opts: TensorOptions = {}): Tensor {
  opts = checked('randn', opts);
  checkShape('randn', shape);
  if (!(gen instanceof Generator)) throw new TypeError('randn: gen must be a Generator');
  return new Tensor(gen.fillNormal(new Float32Array(sizeOf(shape))), shape, opts.requiresGrad ?? false);
}

/** Uniform samples in [lo, hi). */
export function rand(shape: readonly number[], gen: Generator = defaultGenerator, lo = 0, hi = 1, opts: TensorOptions = {}): Tensor {
  opts = checked('rand', opts);
  checkShape('rand', shape);
  if (!(gen instanceof Generator)) throw new TypeError('rand: gen must be a Generator');
  checkNumber('rand', 'lo', lo);
  checkNumber('rand', 'hi', hi);
  return new Tensor(gen.fillUniform(new Float32Array(sizeOf(shape)), lo, hi), shape, opts.requiresGrad ?? false);
}
