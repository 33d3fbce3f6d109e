/**
 * The wasm backend over an instantiated kernel module (diffuse_kernels.wasm, built by tools/build-wasm.sh from
 * native/src and native/wasm): the `Backend` interface, every primitive and the fused kernels native has,
 * plus the EMA update. Browser-safe: no Node module is imported here (./node.ts and ./browser.ts load the
 * bytes and start the worker threads).
 *
 * Each call copies its operands into the module's linear memory (malloc'd there, freed on return), runs the
 * kernel and copies the result out into a fresh Float32Array: the engine's arrays live outside the wasm
 * memory. Those copies are the price of a 4 GiB, shared linear memory that the engine's tensors do not live in
 * (see docs in src/backends/wasm/README.md). Lengths are checked against the shapes here, before anything is
 * written into the memory, as the native addon checks them (the C++ side trusts its arguments).
 */
import type { Backend, BackendName, BinaryOp, Conv2dGeometry, FStore, I32, NormGrads, NormResult, ReduceOp, UnaryOp } from '../backend.js';
import { isDeviceArray, UNARY_OPS } from '../backend.js';
import { RefCountedArray } from '../memory.js';

/** The module's exports (native/wasm/*.cc); pointers and sizes are int32, scalars double. */
export interface WasmExports {
  dn_malloc(n: number): number;
  dn_free(p: number): void;
  dn_tls_size(): number;
  dn_init(): number;
  dn_worker_start(stackTop: number, tls: number, tid: number): void;
  dn_set_threads(n: number): number;
  dn_set_can_block(b: number): void;
  dn_pool_quit(): void;
  dn_unary(op: number, x: number, y: number, n: number): void;
  dn_activation_backward(op: number, x: number, dy: number, dx: number, n: number): void;
  dn_binary(op: number, a: number, as: number, b: number, bs: number, shape: number, nd: number, out: number): void;
  dn_where(c: number, cs: number, a: number, as: number, b: number, bs: number, shape: number, nd: number, out: number): void;
  dn_affine(x: number, y: number, n: number, s: number, t: number): void;
  dn_pow_scalar(x: number, y: number, n: number, p: number): void;
  dn_clamp(x: number, y: number, n: number, lo: number, hi: number): void;
  dn_reduce(op: number, x: number, out: number, outer: number, size: number, inner: number): void;
  dn_strided_copy(src: number, so: number, ss: number, shape: number, nd: number, dst: number, doff: number, ds: number, acc: number): void;
  dn_matmul(a: number, b: number, out: number, batch: number, m: number, n: number, k: number, ta: number, tb: number, sa: number, sb: number): void;
  dn_conv2d(x: number, w: number, bias: number, g: number, y: number): number;
  dn_conv2d_backward_input(dy: number, w: number, g: number, dx: number): number;
  dn_conv2d_backward_weight(x: number, dy: number, g: number, dw: number): number;
  dn_group_norm_stats(x: number, n: number, c: number, hw: number, groups: number, eps: number, mean: number, rstd: number): void;
  dn_conv2d_normed(x: number, gamma: number, beta: number, mean: number, rstd: number, groups: number, silu: number, w: number,
    bias: number, imageBias: number, residual: number, g: number, y: number): number;
  dn_conv2d_backward_weight_normed(x: number, gamma: number, beta: number, mean: number, rstd: number, groups: number,
    silu: number, dy: number, g: number, dw: number): number;
  dn_gather_rows(table: number, idx: number, n: number, d: number, out: number): void;
  dn_scatter_add_rows(dy: number, idx: number, n: number, rows: number, d: number, out: number): void;
  dn_group_norm(x: number, gamma: number, beta: number, n: number, c: number, hw: number, groups: number, eps: number, silu: number,
    y: number, mean: number, rstd: number): void;
  dn_group_norm_backward(dy: number, x: number, gamma: number, beta: number, mean: number, rstd: number, n: number, c: number,
    hw: number, groups: number, silu: number, dx: number, dgamma: number, dbeta: number): number;
  dn_layer_norm(x: number, gamma: number, beta: number, rows: number, d: number, eps: number, y: number, mean: number, rstd: number): void;
  dn_layer_norm_backward(dy: number, x: number, gamma: number, mean: number, rstd: number, rows: number, d: number,
    dx: number, dgamma: number, dbeta: number): number;
  dn_softmax(x: number, y: number, rows: number, d: number): void;
  dn_softmax_backward(y: number, dy: number, dx: number, rows: number, d: number): void;
  dn_log_softmax(x: number, y: number, rows: number, d: number): void;
  dn_log_softmax_backward(y: number, dy: number, dx: number, rows: number, d: number): void;
  dn_upsample_nearest2x(x: number, y: number, planes: number, h: number, w: number): void;
  dn_avg_pool2x2(x: number, y: number, planes: number, h: number, w: number): void;
  dn_adamw(p: number, g: number, m: number, v: number, n: number, lr: number, b1: number, b2: number, eps: number, wd: number, step: number): void;
  dn_lerp(s: number, v: number, n: number, a: number): void;
  dn_isa(): number;
  dn_conv_impl(): number;
  dn_winograd(enable: number): number;
}

/** What a worker thread needs to join the pool: the compiled module, the shared memory, its stack and
 *  thread-local block (allocated in that memory) and its id. */
export interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  stackTop: number;
  tls: number;
  tid: number;
}

export interface WasmInfo {
  /** 'simd128' (or 'simd128+relaxed': the relaxed-SIMD build with fused multiply-adds). */
  isa: string;
  /** The convolution implementation: 'winograd+direct-simd128' etc. */
  conv: string;
  /** Threads running kernels, the caller included. */
  threads: number;
  /** Why it runs with fewer threads than asked (no SharedArrayBuffer, …), if it does. */
  note?: string;
}

export type WasmBackend = Backend<FStore> & { readonly wasm: WasmRuntime };

/** Pages of the memory the module expects at least (tools/build-wasm.sh --initial-memory: 16 MiB). */
export const INITIAL_PAGES = 256;
const MAX_PAGES = 65536; // 4 GiB, wasm32's limit: reserved address space, not memory in use
const WORKER_STACK = 1 << 20;

const UNARY_CODE = new Map<string, number>(UNARY_OPS.map((op, i) => [op, i]));
const ACTIVATION_CODE = { sigmoid: 13, silu: 14, gelu: 15 } as const;
const BINARY_CODE: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, gt: 8, lt: 9 };
const MAX_DIMS = 16;

/** The memory a module of this build needs: shared (threads) or not (the single-threaded build). */
export function createMemory(shared: boolean): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAX_PAGES, shared });
}

function sizeOf(shape: number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** [lowest, highest] element offset a strided walk over `shape` touches from `offset`. */
function span(offset: number, strides: number[], shape: number[]): [number, number] {
  let lo = offset, hi = offset;
  for (let k = 0; k < shape.length; k++) {
    const d = (shape[k] - 1) * strides[k];
    if (d < 0) lo += d; else hi += d;
  }
  return [lo, hi];
}

/** Whether a walk visits every element of its span exactly once (its strides, sorted, are a dense layout). */
function denseWalk(strides: number[], shape: number[]): boolean {
  const dims = shape.map((n, k) => [Math.abs(strides[k]), n]).filter(([, n]) => n > 1).sort((p, q) => p[0] - q[0]);
  let next = 1;
  for (const [st, n] of dims) {
    if (st !== next) return false;
    next *= n;
  }
  return true;
}

/** The module instance and the per-call memory traffic. */
export class WasmRuntime {
  readonly ex: WasmExports;
  readonly memory: WebAssembly.Memory;
  readonly module: WebAssembly.Module;
  threads = 1;
  note: string | undefined;
  private f32 = new Float32Array(0);
  private i32 = new Int32Array(0);
  private live: number[] = [];
  /** 64 int32s for strides / shapes / geometry (never freed). */
  private argBlock: number;

  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory) {
    this.module = module;
    this.memory = memory;
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    this.ex = inst.exports as unknown as WasmExports;
    if (!this.ex.dn_init()) throw new Error('wasm backend: could not allocate the main thread\'s thread-local block');
    this.argBlock = this.ex.dn_malloc(4 * 4 * MAX_DIMS);
  }

  /** Views of the memory (renewed after it grows). */
  heapF32(): Float32Array {
    if (this.f32.buffer !== this.memory.buffer) {
      this.f32 = new Float32Array(this.memory.buffer);
      this.i32 = new Int32Array(this.memory.buffer);
    }
    return this.f32;
  }
  heapI32(): Int32Array {
    this.heapF32();
    return this.i32;
  }

  alloc(floats: number): number {
    const p = this.ex.dn_malloc(Math.max(4, floats * 4));
    if (!p) {
      this.release();
      throw new Error(`wasm backend: out of memory allocating ${floats * 4} bytes in its linear memory`);
    }
    this.live.push(p);
    return p;
  }
  /** Copies `a` into the memory; returns its address. */
  put(a: Float32Array | Int32Array): number {
    const p = this.alloc(a.length);
    if (a instanceof Float32Array) this.heapF32().set(a, p >> 2);
    else this.heapI32().set(a, p >> 2);
    return p;
  }
  putOpt(a: Float32Array | null): number {
    return a ? this.put(a) : 0;
  }
  /** A fresh array holding n floats at p. */
  take(p: number, n: number): Float32Array {
    return this.heapF32().slice(p >> 2, (p >> 2) + n);
  }
  /** int32 arguments (strides, shapes, geometry) in the argument block: slot 0..3 of MAX_DIMS each. */
  ints(slot: number, values: number[]): number {
    const p = this.argBlock + slot * 4 * MAX_DIMS;
    this.heapI32().set(values, p >> 2);
    return p;
  }
  release(): void {
    for (const p of this.live) this.ex.dn_free(p);
    this.live.length = 0;
  }
  cstring(p: number): string {
    const u8 = new Uint8Array(this.memory.buffer);
    let e = p;
    while (u8[e]) e++;
    let s = '';
    for (let i = p; i < e; i++) s += String.fromCharCode(u8[i]);
    return s;
  }

  /**
   * Starts threads − 1 workers through `spawn` (each instantiates the module over this memory and calls
   * dn_worker_start, which returns only at shutdown). Workers join whenever they are up: the pool never waits
   * for one that has not started (native/wasm/pool.cc).
   */
  startWorkers(threads: number, spawn: (start: WorkerStart) => void): void {
    const tlsSize = this.ex.dn_tls_size();
    for (let tid = 1; tid < threads; tid++) {
      const stack = this.ex.dn_malloc(WORKER_STACK), tls = this.ex.dn_malloc(tlsSize + 64);
      if (!stack || !tls) break;
      spawn({ module: this.module, memory: this.memory, stackTop: stack + WORKER_STACK, tls, tid });
      this.threads = tid + 1;
    }
    this.ex.dn_set_threads(this.threads);
  }

  info(): WasmInfo {
    return { isa: this.cstring(this.ex.dn_isa()), conv: this.cstring(this.ex.dn_conv_impl()), threads: this.threads, ...(this.note ? { note: this.note } : {}) };
  }
}

function need(kernel: string, what: string, a: { length: number } | null, n: number): void {
  if (a && a.length !== n) throw new Error(`wasm ${kernel}: ${what} has ${a.length} elements, expected ${n}`);
}
/** The norm arguments of the *Normed convolutions, for an input of g.n images of g.c channels. */
function normArgs(kernel: string, gamma: { length: number } | null, beta: { length: number } | null,
  mean: { length: number }, rstd: { length: number }, groups: number, g: Conv2dGeometry): void {
  if (!Number.isInteger(groups) || groups < 1 || g.c % groups) throw new Error(`wasm ${kernel}: c = ${g.c} is not a multiple of groups = ${groups}`);
  need(kernel, 'gamma', gamma, g.c);
  need(kernel, 'beta', beta, g.c);
  need(kernel, 'mean', mean, g.n * groups);
  need(kernel, 'rstd', rstd, g.n * groups);
}
function needAtLeast(kernel: string, what: string, a: { length: number }, n: number): void {
  if (a.length < n) throw new Error(`wasm ${kernel}: ${what} has ${a.length} elements, needs at least ${n}`);
}
function dims(kernel: string, shape: number[], ...strides: number[][]): void {
  if (shape.length > MAX_DIMS) throw new Error(`wasm ${kernel}: ${shape.length} dimensions (at most ${MAX_DIMS})`);
  for (const s of strides) if (s.length !== shape.length) throw new Error(`wasm ${kernel}: strides and shape lengths differ`);
}
/** The highest element a broadcast walk reads must exist (strides ≥ 0 here: broadcasts, not views). */
function stridedFits(kernel: string, what: string, a: { length: number }, strides: number[], shape: number[]): void {
  const [lo, hi] = span(0, strides, shape);
  if (lo < 0 || hi >= a.length) throw new Error(`wasm ${kernel}: ${what} (${a.length} elements) is too short for its strides`);
}

/**
 * A float32 array in the module's linear memory: the wasm backend's tensor storage. Kernels read and write it
 * in place, so a network evaluation copies nothing in or out and allocates nothing on the JS heap (in
 * Chromium a fresh array's pages fault in on first write: at batch 1 that cost as much as the kernels).
 * Freed when released or garbage-collected (RefCountedArray); the module's allocator reuses the block at once.
 * Reads are synchronous (a copy out), so `tensor.data` works as on the host.
 */
export class WasmArray extends RefCountedArray {
  readonly device: BackendName = 'wasm';
  private readonly at: number;

  constructor(readonly rt: WasmRuntime, length: number) {
    const ptr = rt.ex.dn_malloc(Math.max(4, length * 4));
    if (!ptr) throw new Error(`wasm backend: out of memory allocating ${length * 4} bytes in its linear memory`);
    super(length, () => rt.ex.dn_free(ptr));
    this.at = ptr;
  }

  get ptr(): number {
    if (this.released) throw new Error('wasm: a tensor was used after it was disposed (its memory was freed)');
    return this.at;
  }

  /** A view of the values in the memory (valid until the memory grows). */
  view(): Float32Array {
    const p = this.ptr >> 2;
    return this.rt.heapF32().subarray(p, p + this.length);
  }

  readSync(): Float32Array {
    return (this.host ??= this.view().slice());
  }

  read(): Promise<Float32Array> {
    return Promise.resolve(this.readSync());
  }
}

/** The Backend over a runtime. Operands given as host arrays are copied in for the call and freed when it
 *  returns (or throws); results are WasmArrays. */
export function wasmBackendOver(rt: WasmRuntime): WasmBackend {
  const ex = rt.ex;
  type F = FStore;
  /** Results of the running call: freed if it throws (a released operand, a short length, no memory). */
  const made: WasmArray[] = [];
  const call = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      for (const a of made) a.release();
      throw e;
    } finally {
      made.length = 0;
      rt.release();
    }
  };
  /** The address of an operand: a WasmArray of this runtime, or a host array copied in for this call. */
  const at = (a: F): number => {
    if (a instanceof WasmArray) {
      if (a.rt !== rt) throw new Error('wasm: an array of another wasm instance; read it first');
      return a.ptr;
    }
    if (isDeviceArray(a)) throw new Error(`wasm: an array on the ${a.device} backend; read it first (await tensor.read())`);
    return rt.put(a);
  };
  const atOpt = (a: F | null): number => (a ? at(a) : 0);
  const out = (n: number) => { const a = new WasmArray(rt, n); made.push(a); return a; };
  /** After an in-place kernel: a host array gets the values back; a WasmArray's host copy is stale. */
  const wroteBack = (a: F, p: number) => {
    if (a instanceof WasmArray) a.host = null;
    else (a as Float32Array).set(rt.heapF32().subarray(p >> 2, (p >> 2) + a.length));
  };
  const map1 = (x: F, f: (px: number, py: number) => void): WasmArray => call(() => {
    const y = out(x.length);
    if (x.length) f(at(x), y.ptr);
    return y;
  });
  const geom = (g: Conv2dGeometry) => rt.ints(0, [g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.oh, g.ow]);
  const oom = (kernel: string) => new Error(`wasm ${kernel}: out of memory for scratch buffers`);

  const b: WasmBackend = {
    name: 'wasm',
    // Storage lives in the module's memory (WasmArray): tensors are recorded by scopes and released at their
    // end, as on WebGPU, instead of waiting for the collector.
    device: true,
    wasm: rt,
    empty: (n) => new WasmArray(rt, n),
    full: (n, value) => { const a = new WasmArray(rt, n); a.view().fill(value); return a; },
    fromHost: (data) => { const a = new WasmArray(rt, data.length); a.view().set(data); return a; },

    unary(op: UnaryOp, x: F): F {
      const code = UNARY_CODE.get(op);
      if (code === undefined) throw new Error(`wasm unary: unknown op '${op}'`);
      return map1(x, (px, py) => ex.dn_unary(code, px, py, x.length));
    },

    binary(op: BinaryOp, a: F, aStrides: number[], bArr: F, bStrides: number[], outShape: number[]): F {
      const code = BINARY_CODE[op];
      if (code === undefined) throw new Error(`wasm binary: unknown op '${op}'`);
      dims('binary', outShape, aStrides, bStrides);
      const total = sizeOf(outShape);
      stridedFits('binary', 'a', a, aStrides, outShape);
      stridedFits('binary', 'b', bArr, bStrides, outShape);
      return call(() => {
        const o = out(total);
        if (total) ex.dn_binary(code, at(a), rt.ints(0, aStrides), at(bArr), rt.ints(1, bStrides), rt.ints(2, outShape), outShape.length, o.ptr);
        return o;
      });
    },

    where(cond: F, cStrides: number[], a: F, aStrides: number[], bArr: F, bStrides: number[], outShape: number[]): F {
      dims('where', outShape, cStrides, aStrides, bStrides);
      const total = sizeOf(outShape);
      stridedFits('where', 'cond', cond, cStrides, outShape);
      stridedFits('where', 'a', a, aStrides, outShape);
      stridedFits('where', 'b', bArr, bStrides, outShape);
      return call(() => {
        const o = out(total);
        if (total) ex.dn_where(at(cond), rt.ints(0, cStrides), at(a), rt.ints(1, aStrides), at(bArr), rt.ints(2, bStrides), rt.ints(3, outShape), outShape.length, o.ptr);
        return o;
      });
    },

    affine: (x, scale, shift) => map1(x, (px, py) => ex.dn_affine(px, py, x.length, scale, shift)),
    powScalar: (x, p) => map1(x, (px, py) => ex.dn_pow_scalar(px, py, x.length, p)),
    clamp: (x, lo, hi) => map1(x, (px, py) => ex.dn_clamp(px, py, x.length, lo, hi)),

    reduce(op: ReduceOp, x: F, outer: number, size: number, inner: number): F {
      need('reduce', 'x', x, outer * size * inner);
      const n = outer * inner;
      return call(() => {
        const o = out(n);
        if (n) ex.dn_reduce(op === 'sum' ? 0 : 1, at(x), o.ptr, outer, size, inner);
        return o;
      });
    },

    stridedCopy(src, srcOffset, srcStrides, shape, dst, dstOffset, dstStrides, accumulate): void {
      dims('stridedCopy', shape, srcStrides, dstStrides);
      if (sizeOf(shape) === 0) return;
      const [s0, s1] = span(srcOffset, srcStrides, shape), [d0, d1] = span(dstOffset, dstStrides, shape);
      if (s0 < 0 || s1 >= src.length) throw new Error(`wasm stridedCopy: the walk reads src[${s0}..${s1}] of ${src.length}`);
      if (d0 < 0 || d1 >= dst.length) throw new Error(`wasm stridedCopy: the walk writes dst[${d0}..${d1}] of ${dst.length}`);
      call(() => {
        // A host operand travels only over the span the walk touches (a slice of a large array copies no more).
        const ps = src instanceof WasmArray ? src.ptr + 4 * s0 : at((src as Float32Array).subarray(s0, s1 + 1));
        const ss = srcOffset - s0;
        if (dst instanceof WasmArray) {
          ex.dn_strided_copy(ps, ss, rt.ints(0, srcStrides), rt.ints(1, shape), shape.length, dst.ptr, dstOffset,
            rt.ints(2, dstStrides), accumulate ? 1 : 0);
          dst.host = null;
          return;
        }
        if (isDeviceArray(dst)) throw new Error(`wasm stridedCopy: dst is on the ${dst.device} backend`);
        // a plain copy that writes every element of its span (a permute, a whole slice) needs no copy of dst in
        const covers = !accumulate && denseWalk(dstStrides, shape);
        const pd = covers ? rt.alloc(d1 - d0 + 1) : rt.put(dst.subarray(d0, d1 + 1));
        ex.dn_strided_copy(ps, ss, rt.ints(0, srcStrides), rt.ints(1, shape), shape.length, pd, dstOffset - d0,
          rt.ints(2, dstStrides), accumulate ? 1 : 0);
        dst.set(rt.heapF32().subarray(pd >> 2, (pd >> 2) + d1 - d0 + 1), d0);
      });
    },

    matmul(a, bArr, batch, m, n, k, transA, transB, aBatchStride, bBatchStride): F {
      const total = batch * m * n;
      if (total > 0 && k > 0) {
        needAtLeast('matmul', 'a', a, (batch - 1) * aBatchStride + m * k);
        needAtLeast('matmul', 'b', bArr, (batch - 1) * bBatchStride + k * n);
      }
      return call(() => {
        const o = out(total);
        if (total) ex.dn_matmul(at(a), at(bArr), o.ptr, batch, m, n, k, transA ? 1 : 0, transB ? 1 : 0, aBatchStride, bBatchStride);
        return o;
      });
    },

    conv2d(x: F, w: F, bias: F | null, g: Conv2dGeometry): F {
      need('conv2d', 'x', x, g.n * g.c * g.h * g.w);
      need('conv2d', 'w', w, g.o * g.c * g.kh * g.kw);
      need('conv2d', 'bias', bias, g.o);
      const total = g.n * g.o * g.oh * g.ow;
      return call(() => {
        const y = out(total);
        if (total && !ex.dn_conv2d(at(x), at(w), atOpt(bias), geom(g), y.ptr)) throw oom('conv2d');
        return y;
      });
    },

    conv2dBackwardInput(dy: F, w: F, g: Conv2dGeometry): F {
      need('conv2dBackwardInput', 'dy', dy, g.n * g.o * g.oh * g.ow);
      need('conv2dBackwardInput', 'w', w, g.o * g.c * g.kh * g.kw);
      const total = g.n * g.c * g.h * g.w;
      return call(() => {
        const dx = out(total);
        if (total && !ex.dn_conv2d_backward_input(at(dy), at(w), geom(g), dx.ptr)) throw oom('conv2dBackwardInput');
        return dx;
      });
    },

    conv2dBackwardWeight(x: F, dy: F, g: Conv2dGeometry): F {
      need('conv2dBackwardWeight', 'x', x, g.n * g.c * g.h * g.w);
      need('conv2dBackwardWeight', 'dy', dy, g.n * g.o * g.oh * g.ow);
      const total = g.o * g.c * g.kh * g.kw;
      return call(() => {
        const dw = out(total);
        if (total && !ex.dn_conv2d_backward_weight(at(x), at(dy), geom(g), dw.ptr)) throw oom('conv2dBackwardWeight');
        return dw;
      });
    },

    gatherRows(table: F, idx: I32, d: number): F {
      const rows = d > 0 ? table.length / d : 0;
      for (const i of idx) if (!(i >= 0 && i < rows)) throw new Error(`wasm gatherRows: index ${i} out of range [0, ${rows})`);
      const total = idx.length * d;
      return call(() => {
        const o = out(total);
        if (total) ex.dn_gather_rows(at(table), rt.put(idx), idx.length, d, o.ptr);
        return o;
      });
    },

    scatterAddRows(dy: F, idx: I32, rows: number, d: number): F {
      need('scatterAddRows', 'dy', dy, idx.length * d);
      for (const i of idx) if (!(i >= 0 && i < rows)) throw new Error(`wasm scatterAddRows: index ${i} out of range [0, ${rows})`);
      const total = rows * d;
      return call(() => {
        const o = out(total);
        if (total) ex.dn_scatter_add_rows(at(dy), rt.put(idx), idx.length, rows, d, o.ptr);
        return o;
      });
    },

    // ---- fused kernels (those native has, and the EMA update)

    activation: (op, x) => map1(x, (px, py) => ex.dn_unary(ACTIVATION_CODE[op], px, py, x.length)),

    activationBackward(op, x, dy): F {
      need('activationBackward', 'dy', dy, x.length);
      return call(() => {
        const dx = out(x.length);
        if (x.length) ex.dn_activation_backward(ACTIVATION_CODE[op], at(x), at(dy), dx.ptr, x.length);
        return dx;
      });
    },

    groupNorm(x, gamma, beta, n, c, hw, groups, eps, silu): NormResult<F> {
      need('groupNorm', 'x', x, n * c * hw);
      need('groupNorm', 'gamma', gamma, c);
      need('groupNorm', 'beta', beta, c);
      if (groups < 1 || c % groups) throw new Error(`wasm groupNorm: c = ${c} is not a multiple of groups = ${groups}`);
      const ng = n * groups;
      return call(() => {
        const y = out(x.length), mean = out(ng), rstd = out(ng);
        ex.dn_group_norm(at(x), atOpt(gamma), atOpt(beta), n, c, hw, groups, eps, silu ? 1 : 0, y.ptr, mean.ptr, rstd.ptr);
        return { y, mean, rstd };
      });
    },

    groupNormStats(x, n, c, hw, groups, eps) {
      need('groupNormStats', 'x', x, n * c * hw);
      if (groups < 1 || c % groups) throw new Error(`wasm groupNormStats: c = ${c} is not a multiple of groups = ${groups}`);
      return call(() => {
        const mean = out(n * groups), rstd = out(n * groups);
        ex.dn_group_norm_stats(at(x), n, c, hw, groups, eps, mean.ptr, rstd.ptr);
        return { mean, rstd };
      });
    },

    conv2dNormed(x, gamma, beta, mean, rstd, groups, silu, w, bias, imageBias, residual, g): F {
      need('conv2dNormed', 'x', x, g.n * g.c * g.h * g.w);
      need('conv2dNormed', 'w', w, g.o * g.c * g.kh * g.kw);
      normArgs('conv2dNormed', gamma, beta, mean, rstd, groups, g);
      need('conv2dNormed', 'bias', bias, g.o);
      need('conv2dNormed', 'imageBias', imageBias, g.n * g.o);
      const total = g.n * g.o * g.oh * g.ow;
      need('conv2dNormed', 'residual', residual, total);
      return call(() => {
        const y = out(total);
        if (total && !ex.dn_conv2d_normed(at(x), atOpt(gamma), atOpt(beta), at(mean), at(rstd), groups, silu ? 1 : 0, at(w),
          atOpt(bias), atOpt(imageBias), atOpt(residual), geom(g), y.ptr)) throw oom('conv2dNormed');
        return y;
      });
    },

    conv2dBackwardWeightNormed(x, gamma, beta, mean, rstd, groups, silu, dy, g): F {
      need('conv2dBackwardWeightNormed', 'x', x, g.n * g.c * g.h * g.w);
      need('conv2dBackwardWeightNormed', 'dy', dy, g.n * g.o * g.oh * g.ow);
      normArgs('conv2dBackwardWeightNormed', gamma, beta, mean, rstd, groups, g);
      const total = g.o * g.c * g.kh * g.kw;
      return call(() => {
        const dw = out(total);
        if (total && !ex.dn_conv2d_backward_weight_normed(at(x), atOpt(gamma), atOpt(beta), at(mean), at(rstd), groups,
          silu ? 1 : 0, at(dy), geom(g), dw.ptr)) throw oom('conv2dBackwardWeightNormed');
        return dw;
      });
    },

    groupNormBackward(dy, x, gamma, beta, mean, rstd, n, c, hw, groups, silu): NormGrads<F> {
      need('groupNormBackward', 'x', x, n * c * hw);
      need('groupNormBackward', 'dy', dy, n * c * hw);
      need('groupNormBackward', 'gamma', gamma, c);
      need('groupNormBackward', 'beta', beta, c);
      need('groupNormBackward', 'mean', mean, n * groups);
      need('groupNormBackward', 'rstd', rstd, n * groups);
      if (groups < 1 || c % groups) throw new Error(`wasm groupNormBackward: c = ${c} is not a multiple of groups = ${groups}`);
      return call(() => {
        const dx = out(x.length), dgamma = gamma ? out(c) : null, dbeta = beta ? out(c) : null;
        if (!ex.dn_group_norm_backward(at(dy), at(x), atOpt(gamma), atOpt(beta), at(mean), at(rstd), n, c, hw, groups, silu ? 1 : 0,
          dx.ptr, dgamma?.ptr ?? 0, dbeta?.ptr ?? 0)) throw oom('groupNormBackward');
        return { dx, dgamma, dbeta };
      });
    },

    layerNorm(x, gamma, beta, rows, d, eps): NormResult<F> {
      need('layerNorm', 'x', x, rows * d);
      need('layerNorm', 'gamma', gamma, d);
      need('layerNorm', 'beta', beta, d);
      return call(() => {
        const y = out(x.length), mean = out(rows), rstd = out(rows);
        ex.dn_layer_norm(at(x), atOpt(gamma), atOpt(beta), rows, d, eps, y.ptr, mean.ptr, rstd.ptr);
        return { y, mean, rstd };
      });
    },

    layerNormBackward(dy, x, gamma, mean, rstd, rows, d, hasBeta): NormGrads<F> {
      need('layerNormBackward', 'x', x, rows * d);
      need('layerNormBackward', 'dy', dy, rows * d);
      need('layerNormBackward', 'gamma', gamma, d);
      need('layerNormBackward', 'mean', mean, rows);
      need('layerNormBackward', 'rstd', rstd, rows);
      return call(() => {
        const dx = out(x.length), dgamma = gamma ? out(d) : null, dbeta = hasBeta ? out(d) : null;
        if (!ex.dn_layer_norm_backward(at(dy), at(x), atOpt(gamma), at(mean), at(rstd), rows, d, dx.ptr, dgamma?.ptr ?? 0, dbeta?.ptr ?? 0)) {
          throw oom('layerNormBackward');
        }
        return { dx, dgamma, dbeta };
      });
    },

    softmax(x, rows, d): F {
      need('softmax', 'x', x, rows * d);
      return map1(x, (px, py) => ex.dn_softmax(px, py, rows, d));
    },
    logSoftmax(x, rows, d): F {
      need('logSoftmax', 'x', x, rows * d);
      return map1(x, (px, py) => ex.dn_log_softmax(px, py, rows, d));
    },
    softmaxBackward(y, dy, rows, d): F {
      need('softmaxBackward', 'y', y, rows * d);
      need('softmaxBackward', 'dy', dy, rows * d);
      return call(() => {
        const dx = out(y.length);
        if (y.length) ex.dn_softmax_backward(at(y), at(dy), dx.ptr, rows, d);
        return dx;
      });
    },
    logSoftmaxBackward(y, dy, rows, d): F {
      need('logSoftmaxBackward', 'y', y, rows * d);
      need('logSoftmaxBackward', 'dy', dy, rows * d);
      return call(() => {
        const dx = out(y.length);
        if (y.length) ex.dn_log_softmax_backward(at(y), at(dy), dx.ptr, rows, d);
        return dx;
      });
    },

    upsampleNearest2x(x, planes, h, w): F {
      need('upsampleNearest2x', 'x', x, planes * h * w);
      const total = planes * 4 * h * w;
      return call(() => {
        const y = out(total);
        if (total) ex.dn_upsample_nearest2x(at(x), y.ptr, planes, h, w);
        return y;
      });
    },
    avgPool2x2(x, planes, h, w): F {
      need('avgPool2x2', 'x', x, planes * h * w);
      if (h % 2 || w % 2) throw new Error(`wasm avgPool2x2: h = ${h} and w = ${w} must be even`);
      const total = (planes * h * w) / 4;
      return call(() => {
        const y = out(total);
        if (total) ex.dn_avg_pool2x2(at(x), y.ptr, planes, h, w);
        return y;
      });
    },

    adamW(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step): void {
      need('adamW', 'g', g, p.length);
      need('adamW', 'm', m, p.length);
      need('adamW', 'v', v, p.length);
      if (p.length === 0) return;
      call(() => {
        const pp = at(p), pm = at(m), pv = at(v);
        ex.dn_adamw(pp, at(g), pm, pv, p.length, lr, beta1, beta2, eps, weightDecay, step);
        wroteBack(p, pp);
        wroteBack(m, pm);
        wroteBack(v, pv);
      });
    },

    lerpInPlace(s, v, a): void {
      need('lerpInPlace', 'v', v, s.length);
      if (s.length === 0) return;
      call(() => {
        const ps = at(s);
        ex.dn_lerp(ps, at(v), s.length, a);
        wroteBack(s, ps);
      });
    },
  };
  return b;
}

/**
 * Whether this engine runs relaxed SIMD (a 49-byte module with one f32x4.relaxed_madd validates): then the
 * loaders pick diffuse_kernels_relaxed.wasm, whose GEMM and convolution kernels issue fused multiply-adds.
 * Chromium, Firefox and Node ≥ 21 do; Node 20 does only with --experimental-wasm-relaxed-simd.
 */
export function relaxedSimdSupported(): boolean {
  const splat = (v: number) => [0x43, ...new Uint8Array(new Float32Array([v]).buffer), 0xfd, 0x13]; // f32.const v; f32x4.splat
  const body = [0x00, ...splat(1), ...splat(2), ...splat(3), 0xfd, 0x85, 0x02, 0x0b]; // f32x4.relaxed_madd; end
  const bytes = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0, 10, body.length + 2, 1, body.length, ...body];
  try { return WebAssembly.validate(new Uint8Array(bytes)); } catch { return false; }
}

/** The default thread count: DIFFUSE_NUM_THREADS, else min(cores, 4). */
export function defaultThreads(cores: number, env: string | undefined): number | { error: string } {
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 256) return { error: `DIFFUSE_NUM_THREADS=${env}: must be an integer in [1, 256]` };
    return n;
  }
  return Math.max(1, Math.min(cores || 1, 4));
}
