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
import type { Backend, BinaryOp, Conv2dGeometry, F32, I32, NormGrads, NormResult, ReduceOp, UnaryOp } from '../backend.js';
import { UNARY_OPS } from '../backend.js';
import { jsBackend } from '../js/index.js';

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

export type WasmBackend = Backend & { readonly wasm: WasmRuntime };

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

/** The Backend over a runtime. Each kernel's allocations are freed when it returns (or throws). */
export function wasmBackendOver(rt: WasmRuntime): WasmBackend {
  const ex = rt.ex;
  const call = <T>(fn: () => T): T => {
    try { return fn(); } finally { rt.release(); }
  };
  const map1 = (x: F32, f: (px: number, py: number) => void): F32 => call(() => {
    if (x.length === 0) return new Float32Array(0);
    const px = rt.put(x), py = rt.alloc(x.length);
    f(px, py);
    return rt.take(py, x.length);
  });
  const geom = (g: Conv2dGeometry) => rt.ints(0, [g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.oh, g.ow]);
  const oom = (kernel: string) => new Error(`wasm ${kernel}: out of memory for scratch buffers`);

  const b: WasmBackend = {
    name: 'wasm',
    device: false,
    wasm: rt,
    // Storage is host memory, as on the js and native backends.
    empty: jsBackend.empty,
    full: jsBackend.full,
    fromHost: jsBackend.fromHost,

    unary(op: UnaryOp, x: F32): F32 {
      const code = UNARY_CODE.get(op);
      if (code === undefined) throw new Error(`wasm unary: unknown op '${op}'`);
      return map1(x, (px, py) => ex.dn_unary(code, px, py, x.length));
    },

    binary(op: BinaryOp, a: F32, aStrides: number[], bArr: F32, bStrides: number[], outShape: number[]): F32 {
      const code = BINARY_CODE[op];
      if (code === undefined) throw new Error(`wasm binary: unknown op '${op}'`);
      dims('binary', outShape, aStrides, bStrides);
      const total = sizeOf(outShape);
      if (total === 0) return new Float32Array(0);
      stridedFits('binary', 'a', a, aStrides, outShape);
      stridedFits('binary', 'b', bArr, bStrides, outShape);
      return call(() => {
        const pa = rt.put(a), pb = rt.put(bArr), po = rt.alloc(total);
        ex.dn_binary(code, pa, rt.ints(0, aStrides), pb, rt.ints(1, bStrides), rt.ints(2, outShape), outShape.length, po);
        return rt.take(po, total);
      });
    },

    where(cond: F32, cStrides: number[], a: F32, aStrides: number[], bArr: F32, bStrides: number[], outShape: number[]): F32 {
      dims('where', outShape, cStrides, aStrides, bStrides);
      const total = sizeOf(outShape);
      if (total === 0) return new Float32Array(0);
      stridedFits('where', 'cond', cond, cStrides, outShape);
      stridedFits('where', 'a', a, aStrides, outShape);
      stridedFits('where', 'b', bArr, bStrides, outShape);
      return call(() => {
        const pc = rt.put(cond), pa = rt.put(a), pb = rt.put(bArr), po = rt.alloc(total);
        ex.dn_where(pc, rt.ints(0, cStrides), pa, rt.ints(1, aStrides), pb, rt.ints(2, bStrides), rt.ints(3, outShape), outShape.length, po);
        return rt.take(po, total);
      });
    },

    affine: (x, scale, shift) => map1(x, (px, py) => ex.dn_affine(px, py, x.length, scale, shift)),
    powScalar: (x, p) => map1(x, (px, py) => ex.dn_pow_scalar(px, py, x.length, p)),
    clamp: (x, lo, hi) => map1(x, (px, py) => ex.dn_clamp(px, py, x.length, lo, hi)),

    reduce(op: ReduceOp, x: F32, outer: number, size: number, inner: number): F32 {
      need('reduce', 'x', x, outer * size * inner);
      const n = outer * inner;
      if (n === 0) return new Float32Array(0);
      return call(() => {
        const px = rt.put(x), po = rt.alloc(n);
        ex.dn_reduce(op === 'sum' ? 0 : 1, px, po, outer, size, inner);
        return rt.take(po, n);
      });
    },

    stridedCopy(src, srcOffset, srcStrides, shape, dst, dstOffset, dstStrides, accumulate): void {
      dims('stridedCopy', shape, srcStrides, dstStrides);
      if (sizeOf(shape) === 0) return;
      // Only the spans the walk touches travel: a slice of a large array does not copy all of it.
      const [s0, s1] = span(srcOffset, srcStrides, shape), [d0, d1] = span(dstOffset, dstStrides, shape);
      if (s0 < 0 || s1 >= src.length) throw new Error(`wasm stridedCopy: the walk reads src[${s0}..${s1}] of ${src.length}`);
      if (d0 < 0 || d1 >= dst.length) throw new Error(`wasm stridedCopy: the walk writes dst[${d0}..${d1}] of ${dst.length}`);
      call(() => {
        // a plain copy that writes every element of its span (a permute, a whole slice) needs no copy of dst in
        const covers = !accumulate && denseWalk(dstStrides, shape);
        const ps = rt.put(src.subarray(s0, s1 + 1)), pd = covers ? rt.alloc(d1 - d0 + 1) : rt.put(dst.subarray(d0, d1 + 1));
        ex.dn_strided_copy(ps, srcOffset - s0, rt.ints(0, srcStrides), rt.ints(1, shape), shape.length, pd, dstOffset - d0,
          rt.ints(2, dstStrides), accumulate ? 1 : 0);
        dst.set(rt.heapF32().subarray(pd >> 2, (pd >> 2) + d1 - d0 + 1), d0);
      });
    },

    matmul(a, bArr, batch, m, n, k, transA, transB, aBatchStride, bBatchStride): F32 {
      const total = batch * m * n;
      if (total === 0) return new Float32Array(0);
      if (k > 0) {
        needAtLeast('matmul', 'a', a, (batch - 1) * aBatchStride + m * k);
        needAtLeast('matmul', 'b', bArr, (batch - 1) * bBatchStride + k * n);
      }
      return call(() => {
        const pa = rt.put(a), pb = rt.put(bArr), po = rt.alloc(total);
        ex.dn_matmul(pa, pb, po, batch, m, n, k, transA ? 1 : 0, transB ? 1 : 0, aBatchStride, bBatchStride);
        return rt.take(po, total);
      });
    },

    conv2d(x: F32, w: F32, bias: F32 | null, g: Conv2dGeometry): F32 {
      need('conv2d', 'x', x, g.n * g.c * g.h * g.w);
      need('conv2d', 'w', w, g.o * g.c * g.kh * g.kw);
      need('conv2d', 'bias', bias, g.o);
      const total = g.n * g.o * g.oh * g.ow;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const px = rt.put(x), pw = rt.put(w), pb = rt.putOpt(bias), py = rt.alloc(total);
        if (!ex.dn_conv2d(px, pw, pb, geom(g), py)) throw oom('conv2d');
        return rt.take(py, total);
      });
    },

    conv2dBackwardInput(dy: F32, w: F32, g: Conv2dGeometry): F32 {
      need('conv2dBackwardInput', 'dy', dy, g.n * g.o * g.oh * g.ow);
      need('conv2dBackwardInput', 'w', w, g.o * g.c * g.kh * g.kw);
      const total = g.n * g.c * g.h * g.w;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const pdy = rt.put(dy), pw = rt.put(w), pdx = rt.alloc(total);
        if (!ex.dn_conv2d_backward_input(pdy, pw, geom(g), pdx)) throw oom('conv2dBackwardInput');
        return rt.take(pdx, total);
      });
    },

    conv2dBackwardWeight(x: F32, dy: F32, g: Conv2dGeometry): F32 {
      need('conv2dBackwardWeight', 'x', x, g.n * g.c * g.h * g.w);
      need('conv2dBackwardWeight', 'dy', dy, g.n * g.o * g.oh * g.ow);
      const total = g.o * g.c * g.kh * g.kw;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const px = rt.put(x), pdy = rt.put(dy), pdw = rt.alloc(total);
        if (!ex.dn_conv2d_backward_weight(px, pdy, geom(g), pdw)) throw oom('conv2dBackwardWeight');
        return rt.take(pdw, total);
      });
    },

    gatherRows(table: F32, idx: I32, d: number): F32 {
      const rows = d > 0 ? table.length / d : 0;
      for (const i of idx) if (!(i >= 0 && i < rows)) throw new Error(`wasm gatherRows: index ${i} out of range [0, ${rows})`);
      const total = idx.length * d;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const pt = rt.put(table), pi = rt.put(idx), po = rt.alloc(total);
        ex.dn_gather_rows(pt, pi, idx.length, d, po);
        return rt.take(po, total);
      });
    },

    scatterAddRows(dy: F32, idx: I32, rows: number, d: number): F32 {
      need('scatterAddRows', 'dy', dy, idx.length * d);
      for (const i of idx) if (!(i >= 0 && i < rows)) throw new Error(`wasm scatterAddRows: index ${i} out of range [0, ${rows})`);
      const total = rows * d;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const pdy = rt.put(dy), pi = rt.put(idx), po = rt.alloc(total);
        ex.dn_scatter_add_rows(pdy, pi, idx.length, rows, d, po);
        return rt.take(po, total);
      });
    },

    // ---- fused kernels (those native has, and the EMA update)

    activation: (op, x) => map1(x, (px, py) => ex.dn_unary(ACTIVATION_CODE[op], px, py, x.length)),

    activationBackward(op, x, dy): F32 {
      need('activationBackward', 'dy', dy, x.length);
      if (x.length === 0) return new Float32Array(0);
      return call(() => {
        const px = rt.put(x), pdy = rt.put(dy), pdx = rt.alloc(x.length);
        ex.dn_activation_backward(ACTIVATION_CODE[op], px, pdy, pdx, x.length);
        return rt.take(pdx, x.length);
      });
    },

    groupNorm(x, gamma, beta, n, c, hw, groups, eps, silu): NormResult {
      need('groupNorm', 'x', x, n * c * hw);
      need('groupNorm', 'gamma', gamma, c);
      need('groupNorm', 'beta', beta, c);
      if (groups < 1 || c % groups) throw new Error(`wasm groupNorm: c = ${c} is not a multiple of groups = ${groups}`);
      const ng = n * groups;
      return call(() => {
        const px = rt.put(x), pg = rt.putOpt(gamma), pb = rt.putOpt(beta);
        const py = rt.alloc(x.length), pm = rt.alloc(ng), pr = rt.alloc(ng);
        ex.dn_group_norm(px, pg, pb, n, c, hw, groups, eps, silu ? 1 : 0, py, pm, pr);
        return { y: rt.take(py, x.length), mean: rt.take(pm, ng), rstd: rt.take(pr, ng) };
      });
    },

    groupNormBackward(dy, x, gamma, beta, mean, rstd, n, c, hw, groups, silu): NormGrads {
      need('groupNormBackward', 'x', x, n * c * hw);
      need('groupNormBackward', 'dy', dy, n * c * hw);
      need('groupNormBackward', 'gamma', gamma, c);
      need('groupNormBackward', 'beta', beta, c);
      need('groupNormBackward', 'mean', mean, n * groups);
      need('groupNormBackward', 'rstd', rstd, n * groups);
      if (groups < 1 || c % groups) throw new Error(`wasm groupNormBackward: c = ${c} is not a multiple of groups = ${groups}`);
      return call(() => {
        const pdy = rt.put(dy), px = rt.put(x), pg = rt.putOpt(gamma), pb = rt.putOpt(beta), pm = rt.put(mean), pr = rt.put(rstd);
        const pdx = rt.alloc(x.length), pdg = gamma ? rt.alloc(c) : 0, pdb = beta ? rt.alloc(c) : 0;
        if (!ex.dn_group_norm_backward(pdy, px, pg, pb, pm, pr, n, c, hw, groups, silu ? 1 : 0, pdx, pdg, pdb)) throw oom('groupNormBackward');
        return { dx: rt.take(pdx, x.length), dgamma: gamma ? rt.take(pdg, c) : null, dbeta: beta ? rt.take(pdb, c) : null };
      });
    },

    layerNorm(x, gamma, beta, rows, d, eps): NormResult {
      need('layerNorm', 'x', x, rows * d);
      need('layerNorm', 'gamma', gamma, d);
      need('layerNorm', 'beta', beta, d);
      return call(() => {
        const px = rt.put(x), pg = rt.putOpt(gamma), pb = rt.putOpt(beta);
        const py = rt.alloc(x.length), pm = rt.alloc(rows), pr = rt.alloc(rows);
        ex.dn_layer_norm(px, pg, pb, rows, d, eps, py, pm, pr);
        return { y: rt.take(py, x.length), mean: rt.take(pm, rows), rstd: rt.take(pr, rows) };
      });
    },

    layerNormBackward(dy, x, gamma, mean, rstd, rows, d, hasBeta): NormGrads {
      need('layerNormBackward', 'x', x, rows * d);
      need('layerNormBackward', 'dy', dy, rows * d);
      need('layerNormBackward', 'gamma', gamma, d);
      need('layerNormBackward', 'mean', mean, rows);
      need('layerNormBackward', 'rstd', rstd, rows);
      return call(() => {
        const pdy = rt.put(dy), px = rt.put(x), pg = rt.putOpt(gamma), pm = rt.put(mean), pr = rt.put(rstd);
        const pdx = rt.alloc(x.length), pdg = gamma ? rt.alloc(d) : 0, pdb = hasBeta ? rt.alloc(d) : 0;
        if (!ex.dn_layer_norm_backward(pdy, px, pg, pm, pr, rows, d, pdx, pdg, pdb)) throw oom('layerNormBackward');
        return { dx: rt.take(pdx, x.length), dgamma: gamma ? rt.take(pdg, d) : null, dbeta: hasBeta ? rt.take(pdb, d) : null };
      });
    },

    softmax(x, rows, d): F32 {
      need('softmax', 'x', x, rows * d);
      return map1(x, (px, py) => ex.dn_softmax(px, py, rows, d));
    },
    logSoftmax(x, rows, d): F32 {
      need('logSoftmax', 'x', x, rows * d);
      return map1(x, (px, py) => ex.dn_log_softmax(px, py, rows, d));
    },
    softmaxBackward(y, dy, rows, d): F32 {
      need('softmaxBackward', 'y', y, rows * d);
      need('softmaxBackward', 'dy', dy, rows * d);
      if (y.length === 0) return new Float32Array(0);
      return call(() => {
        const py = rt.put(y), pdy = rt.put(dy), pdx = rt.alloc(y.length);
        ex.dn_softmax_backward(py, pdy, pdx, rows, d);
        return rt.take(pdx, y.length);
      });
    },
    logSoftmaxBackward(y, dy, rows, d): F32 {
      need('logSoftmaxBackward', 'y', y, rows * d);
      need('logSoftmaxBackward', 'dy', dy, rows * d);
      if (y.length === 0) return new Float32Array(0);
      return call(() => {
        const py = rt.put(y), pdy = rt.put(dy), pdx = rt.alloc(y.length);
        ex.dn_log_softmax_backward(py, pdy, pdx, rows, d);
        return rt.take(pdx, y.length);
      });
    },

    upsampleNearest2x(x, planes, h, w): F32 {
      need('upsampleNearest2x', 'x', x, planes * h * w);
      const total = planes * 4 * h * w;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const px = rt.put(x), py = rt.alloc(total);
        ex.dn_upsample_nearest2x(px, py, planes, h, w);
        return rt.take(py, total);
      });
    },
    avgPool2x2(x, planes, h, w): F32 {
      need('avgPool2x2', 'x', x, planes * h * w);
      if (h % 2 || w % 2) throw new Error(`wasm avgPool2x2: h = ${h} and w = ${w} must be even`);
      const total = (planes * h * w) / 4;
      if (total === 0) return new Float32Array(0);
      return call(() => {
        const px = rt.put(x), py = rt.alloc(total);
        ex.dn_avg_pool2x2(px, py, planes, h, w);
        return rt.take(py, total);
      });
    },

    adamW(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step): void {
      need('adamW', 'g', g, p.length);
      need('adamW', 'm', m, p.length);
      need('adamW', 'v', v, p.length);
      if (p.length === 0) return;
      call(() => {
        const pp = rt.put(p), pg = rt.put(g), pm = rt.put(m), pv = rt.put(v);
        ex.dn_adamw(pp, pg, pm, pv, p.length, lr, beta1, beta2, eps, weightDecay, step);
        const h = rt.heapF32();
        p.set(h.subarray(pp >> 2, (pp >> 2) + p.length));
        m.set(h.subarray(pm >> 2, (pm >> 2) + p.length));
        v.set(h.subarray(pv >> 2, (pv >> 2) + p.length));
      });
    },

    lerpInPlace(s, v, a): void {
      need('lerpInPlace', 'v', v, s.length);
      if (s.length === 0) return;
      call(() => {
        const ps = rt.put(s), pv = rt.put(v);
        ex.dn_lerp(ps, pv, s.length, a);
        s.set(rt.heapF32().subarray(ps >> 2, (ps >> 2) + s.length));
      });
    },
  };
  return b;
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
